package stack

import (
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/routes"
)

// The attachments bucket of each stack (its own, in its own region):
// SSE-KMS with the stack's key, all public access blocked, TLS only, access
// logs to a bucket of its own, uploads no feedback references removed
// after a day, CORS for the browser's POST only, retained like the tables
// and not versioned (an erasure leaves no old version behind).
func TestAttachmentsBucket(t *testing.T) {
	eachStack(t, func(t *testing.T, r Region, tpl template) {
		key := keyID(t, tpl)
		if n := len(tpl.ofType("AWS::S3::Bucket")); n != 2 {
			t.Errorf("%d buckets, want the attachments bucket and its access-log bucket", n)
		}
		res := tpl.resource(t, attachmentsBucketID, "AWS::S3::Bucket")
		p := props(res)
		if res["DeletionPolicy"] != "Retain" {
			t.Errorf("deletion policy %v, want Retain", res["DeletionPolicy"])
		}
		checks := map[string]interface{}{
			"BucketEncryption": map[string]interface{}{"ServerSideEncryptionConfiguration": []interface{}{map[string]interface{}{
				"BucketKeyEnabled":              true,
				"ServerSideEncryptionByDefault": map[string]interface{}{"KMSMasterKeyID": getAtt(key, "Arn"), "SSEAlgorithm": "aws:kms"},
			}}},
			"PublicAccessBlockConfiguration": map[string]interface{}{"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true},
			"LoggingConfiguration":           map[string]interface{}{"DestinationBucketName": map[string]interface{}{"Ref": accessLogsBucketID}, "LogFilePrefix": "attachments/"},
			"CorsConfiguration": map[string]interface{}{"CorsRules": []interface{}{map[string]interface{}{
				"AllowedHeaders": []interface{}{"*"}, "AllowedMethods": []interface{}{"POST"}, "AllowedOrigins": []interface{}{"*"}, "MaxAge": float64(86400),
			}}},
		}
		for k, want := range checks {
			if !equalJSON(p[k], want) {
				t.Errorf("%s = %s, want %s", k, toJSON(p[k]), toJSON(want))
			}
		}
		if p["VersioningConfiguration"] != nil {
			t.Errorf("versioned: %v", p["VersioningConfiguration"])
		}
		rules := toJSON(p["LifecycleConfiguration"])
		if !strings.Contains(rules, `"ExpirationInDays":1`) || !strings.Contains(rules, `"Prefix":"`+objects.UploadsPrefix+`"`) {
			t.Errorf("lifecycle %s, want uploads/ expiring after 1 day", rules)
		}
		// enforceSSL: a bucket policy denying any request without TLS.
		tlsOnly := false
		for _, bp := range tpl.ofType("AWS::S3::BucketPolicy") {
			if ref(props(bp)["Bucket"]) != attachmentsBucketID {
				continue
			}
			for _, st := range list(props(bp)["PolicyDocument"].(map[string]interface{})["Statement"]) {
				s := toJSON(st)
				tlsOnly = tlsOnly || strings.Contains(s, `"Effect":"Deny"`) && strings.Contains(s, `"aws:SecureTransport":"false"`)
			}
		}
		if !tlsOnly {
			t.Error("no bucket policy denies requests without TLS")
		}
	})
}

// Each function's role may do with the bucket exactly what its entry in
// routes.Functions() declares, on the prefixes that needs, and use the key
// only through S3.
func TestBucketGrants(t *testing.T) {
	eachStack(t, func(t *testing.T, r Region, tpl template) {
		objectsArn := func(prefix string) string {
			return toJSON(map[string]interface{}{"Fn::Join": []interface{}{"", []interface{}{getAtt(attachmentsBucketID, "Arn"), "/" + prefix + "*"}}})
		}
		bucketArn := toJSON(getAtt(attachmentsBucketID, "Arn"))
		up, att := objectsArn(objects.UploadsPrefix), objectsArn(objects.AttachmentsPrefix)
		want := map[routes.BucketAccess][]string{
			routes.AttachUploads: {
				"s3:ListBucket " + bucketArn,
				"s3:PutObject " + up, "s3:GetObject " + up, "s3:PutObject " + att, "s3:GetObject " + att,
				"s3:DeleteObject " + up,
				"kms:Decrypt via s3", "kms:GenerateDataKey via s3",
			},
			routes.ServeAttachments: {
				"s3:ListBucket " + bucketArn,
				"s3:GetObject " + att,
				"s3:DeleteObject " + up, "s3:DeleteObject " + att,
				"kms:Decrypt via s3",
			},
		}
		for _, f := range routes.Functions() {
			var got []string
			for _, st := range statements(t, tpl, f.LogicalID) {
				for _, a := range strs(st["Action"]) {
					switch {
					case strings.HasPrefix(a, "s3:"):
						for _, res := range list(st["Resource"]) {
							got = append(got, a+" "+toJSON(res))
						}
					case strings.HasPrefix(a, "kms:") && equalJSON(st["Condition"], viaS3(r)):
						got = append(got, a+" via s3")
					}
				}
			}
			if !sameSet(got, want[f.Bucket]) {
				t.Errorf("%s: %v, want %v", f.LogicalID, got, want[f.Bucket])
			}
		}
	})
}
