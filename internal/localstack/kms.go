package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"golang.org/x/mod/modfile"

	"github.com/waymarkhq/waymark/internal/config"
)

// ModulePath is Waymark's module: its go.mod pins the tools (local-kms, the
// Lambda Runtime Interface Emulator), and its packages are what is built.
const ModulePath = "github.com/waymarkhq/waymark"

// LocalAccountID is the account id local-kms puts in its key ARNs.
const LocalAccountID = "111122223333"

// Tools pinned by the module's tool directives.
const (
	LocalKMSTool = "local-kms"
	EmulatorTool = "aws-lambda-rie"
)

// ToolPath returns the path of a tool pinned by the module's tool
// directives, building it into the Go build cache if needed. It looks for
// the module from the working directory upwards, so it works from the
// repository root (make, waymark dev) and from a package directory (go test).
func ToolPath(ctx context.Context, tool string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("Go is required to build %s: install Go as go.mod says", tool)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("localstack: %w", err)
	}
	root, err := moduleRoot(wd, tool)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, goBin, "tool", "-n", tool)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("localstack: go tool -n %s: %w: %s", tool, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(bytes.TrimSpace(out)), nil
}

// moduleRoot finds the directory of the waymark go.mod at or above dir.
func moduleRoot(dir, tool string) (string, error) {
	for d := dir; ; {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && modfile.ModulePath(data) == ModulePath {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("localstack: %s is built from the %s module: run this inside its checkout", tool, ModulePath)
		}
		d = parent
	}
}

// KMSOptions for StartKMS.
type KMSOptions struct {
	// Binary is the local-kms executable (ToolPath(ctx, LocalKMSTool)).
	Binary string
	// DataPath is the directory of local-kms's database; it must exist.
	DataPath string
	// Log receives the engine's output; nil discards it.
	Log io.Writer
}

// kmsPortLine matches the line local-kms logs once it listens. With PORT=0 it
// reports the port the kernel chose; it always binds every interface.
var kmsPortLine = regexp.MustCompile(`Local KMS started on [^ ]*:(\d+)`)

// StartKMS starts local-kms on a port the kernel picks (local-kms cannot be
// told an address: it listens on every interface) and returns once it answers
// ListKeys. Letting the kernel pick the port also avoids local-kms's panic on
// a port that is taken.
func StartKMS(ctx context.Context, opts KMSOptions) (*Engine, error) {
	dataPath, err := filepath.Abs(opts.DataPath)
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	cmd := exec.Command(opts.Binary)
	cmd.Dir = dataPath
	cmd.Env = append(os.Environ(),
		"PORT=0",
		"KMS_REGION="+config.LocalRegion,
		"KMS_ACCOUNT_ID="+LocalAccountID,
		"KMS_DATA_PATH="+dataPath,
		// Without a seed path local-kms reads /init/seed.yaml; point it at
		// a file that is not there so only our own key exists.
		"KMS_SEED_PATH="+filepath.Join(dataPath, "no-seed.yaml"),
	)
	return startEngine(ctx, engineSpec{
		name:     "local-kms",
		cmd:      cmd,
		portLine: kmsPortLine,
		probe:    probeKMS,
		log:      opts.Log,
	})
}

func probeKMS(ctx context.Context, endpoint string) error {
	_, k, err := config.Config{KMSEndpoint: endpoint}.Clients(ctx)
	if err != nil {
		return err
	}
	_, err = k.ListKeys(ctx, &kms.ListKeysInput{}, func(o *kms.Options) { o.RetryMaxAttempts = 1 })
	return err
}

// EnsureKey returns the ARN of the symmetric encryption key behind alias,
// creating the key and the alias when the alias does not exist yet (a new
// stack, or persisted data from an earlier run that has it).
func EnsureKey(ctx context.Context, k *kms.Client, alias string) (string, error) {
	desc, err := k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	if err == nil {
		return aws.ToString(desc.KeyMetadata.Arn), nil
	}
	if _, ok := errors.AsType[*types.NotFoundException](err); !ok {
		return "", fmt.Errorf("localstack: describe %s: %w", alias, err)
	}
	created, err := k.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String("Waymark local stack: wraps the data keys that seal personal data"),
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
	})
	if err != nil {
		return "", fmt.Errorf("localstack: create key: %w", err)
	}
	if _, err := k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: created.KeyMetadata.KeyId}); err != nil {
		return "", fmt.Errorf("localstack: create alias %s: %w", alias, err)
	}
	return aws.ToString(created.KeyMetadata.Arn), nil
}
