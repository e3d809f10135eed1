// Package buildinfo says which commit a binary was built from, from the
// version-control information the go command embeds in every binary it
// builds in a git checkout (-buildvcs, on by default): a deployed function
// logs it when it starts, and the CDK app stamps each function with it, so
// that nobody has to guess which code runs.
package buildinfo

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// EnvVar is the function environment variable in which the CDK app records
// the commit of the binary it deploys.
const EnvVar = "WAYMARK_COMMIT"

// Unknown is the commit of a binary built outside a git checkout (or with
// -buildvcs=false).
const Unknown = "unknown"

// Commit is the commit this binary was built from.
func Commit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Unknown
	}
	return FromSettings(info.Settings)
}

// FromSettings is the commit recorded in a binary's build settings: the git
// revision, with "-dirty" appended when the tree had uncommitted changes.
func FromSettings(settings []debug.BuildSetting) string {
	revision, modified := "", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision == "" {
		return Unknown
	}
	if modified {
		revision += "-dirty"
	}
	return revision
}

// LogStart writes the one line a function logs when its execution
// environment starts: the function's name and the commit it runs.
func LogStart(function string) {
	slog.New(slog.NewJSONHandler(os.Stdout, nil)).Info("start",
		slog.String("function", function), slog.String("commit", Commit()))
}
