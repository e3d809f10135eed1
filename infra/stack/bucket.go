package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Logical ids of the buckets, pinned like the tables': a retained bucket is
// found again by its logical id.
const (
	attachmentsBucketID = "AttachmentsBucket"
	accessLogsBucketID  = "AccessLogsBucket"
)

// accessLogRetentionDays is how long the attachments bucket's access logs
// are kept: as long as the functions' logs (logRetention).
const accessLogRetentionDays = 30

// addBucket creates the bucket of feedback attachments: SSE-KMS with the
// stack's key, all public access blocked, TLS only, server access logging,
// uploads no feedback references removed after a day, and CORS for the
// browser's presigned POST. It is not versioned: an erasure must delete the
// file, not leave a noncurrent version behind.
func (s *waymarkStack) addBucket() {
	logs := awss3.NewBucket(s.stack, jsii.String(accessLogsBucketID), &awss3.BucketProps{
		// S3 delivers server access logs only to a bucket encrypted with
		// S3-managed keys (SSE-KMS is not supported for log delivery).
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:         jsii.String("ExpireAccessLogs"),
			Expiration: awscdk.Duration_Days(jsii.Number(accessLogRetentionDays)),
		}},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	logs.Node().DefaultChild().(awss3.CfnBucket).OverrideLogicalId(jsii.String(accessLogsBucketID))
	suppress(logs, []suppression{{
		Rule:   "AwsSolutions-S1",
		Reason: "This is the access-log bucket of the attachments bucket; logging it into itself would log its own log deliveries.",
	}})

	s.bucket = awss3.NewBucket(s.stack, jsii.String(attachmentsBucketID), &awss3.BucketProps{
		Encryption:    awss3.BucketEncryption_KMS,
		EncryptionKey: s.key,
		// One data key per bucket for a while instead of a KMS call per
		// object: fewer KMS calls, the same key.
		BucketKeyEnabled:       jsii.Bool(true),
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:             jsii.Bool(true),
		ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		ServerAccessLogsBucket: logs,
		ServerAccessLogsPrefix: jsii.String("attachments/"),
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("ExpireUnreferencedUploads"),
			Prefix:                              jsii.String(objects.UploadsPrefix),
			Expiration:                          awscdk.Duration_Days(jsii.Number(waymark.UnreferencedUploadLifetime.Hours() / 24)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
		}},
		// The browser posts the presigned upload from the customer's page.
		// Any origin: the workspace's origin allow-list was checked when the
		// upload was presigned, and the signed policy admits one key, size
		// and type only; CORS only lets the page read S3's answer.
		Cors: &[]*awss3.CorsRule{{
			AllowedMethods: &[]awss3.HttpMethods{awss3.HttpMethods_POST},
			AllowedOrigins: jsii.Strings("*"),
			AllowedHeaders: jsii.Strings("*"),
			MaxAge:         jsii.Number(86400),
		}},
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	s.bucket.Node().DefaultChild().(awss3.CfnBucket).OverrideLogicalId(jsii.String(attachmentsBucketID))
}

// objectsUnder is the ARN pattern of the bucket's objects under a prefix.
func (s *waymarkStack) objectsUnder(prefix string) *string {
	return s.bucket.ArnForObjects(jsii.String(prefix + "*"))
}

// grantBucket gives a function's role the bucket access its entry in
// routes.Functions() declares. HeadObject needs s3:GetObject, and
// s3:ListBucket on the bucket so that a missing object answers 404 rather
// than 403. A presigned request is authorized as the role that signed it:
// the browser's upload as the feedback function's s3:PutObject, a download
// as the server function's s3:GetObject. S3 uses the key as the caller.
func (s *waymarkStack) grantBucket(f routes.Function, role awsiam.Role) {
	var statements []*awsiam.PolicyStatementProps
	var keyActions []string
	switch f.Bucket {
	case routes.AttachUploads:
		statements = []*awsiam.PolicyStatementProps{
			{Sid: jsii.String("ListAttachments"), Actions: jsii.Strings("s3:ListBucket"), Resources: &[]*string{s.bucket.BucketArn()}},
			{Sid: jsii.String("UploadAndAttach"), Actions: jsii.Strings("s3:PutObject", "s3:GetObject"),
				Resources: &[]*string{s.objectsUnder(objects.UploadsPrefix), s.objectsUnder(objects.AttachmentsPrefix)}},
			{Sid: jsii.String("ReleaseUploads"), Actions: jsii.Strings("s3:DeleteObject"), Resources: &[]*string{s.objectsUnder(objects.UploadsPrefix)}},
		}
		keyActions = []string{"kms:GenerateDataKey", "kms:Decrypt"}
	case routes.ServeAttachments:
		statements = []*awsiam.PolicyStatementProps{
			{Sid: jsii.String("ListAttachments"), Actions: jsii.Strings("s3:ListBucket"), Resources: &[]*string{s.bucket.BucketArn()}},
			{Sid: jsii.String("DownloadAttachments"), Actions: jsii.Strings("s3:GetObject"), Resources: &[]*string{s.objectsUnder(objects.AttachmentsPrefix)}},
			{Sid: jsii.String("EraseAttachments"), Actions: jsii.Strings("s3:DeleteObject"),
				Resources: &[]*string{s.objectsUnder(objects.UploadsPrefix), s.objectsUnder(objects.AttachmentsPrefix)}},
		}
		keyActions = []string{"kms:Decrypt"}
	default:
		return
	}
	for _, st := range statements {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(st))
	}
	suppress(role, objectWildcards)
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("BucketKeyThroughS3"),
		Actions:    jsii.Strings(keyActions...),
		Resources:  &[]*string{s.key.KeyArn()},
		Conditions: toPtr(viaS3(s.region)),
	}))
}

// objectWildcards accepts the object ARNs of the bucket's two prefixes: the
// objects are named at run time (a user's keyed hash and a random id), so a
// prefix is the narrowest resource a policy can name.
var objectWildcards = []suppression{{
	Rule: "AwsSolutions-IAM5",
	Reason: "Attachment objects are created at run time under uploads/ and attachments/ with keys made of the " +
		"workspace code, a keyed hash of the username and a random id; the statement names the one prefix it needs.",
	AppliesTo: []string{"Resource::<" + attachmentsBucketID + ".Arn>/" + objects.UploadsPrefix + "*", "Resource::<" + attachmentsBucketID + ".Arn>/" + objects.AttachmentsPrefix + "*"},
}}

// viaS3 limits a KMS permission to calls S3 makes for the attachments
// bucket's encryption in this stack's region.
func viaS3(r Region) map[string]interface{} {
	return map[string]interface{}{
		"StringEquals": map[string]interface{}{
			"kms:ViaService": "s3." + r.Name + ".amazonaws.com",
		},
	}
}
