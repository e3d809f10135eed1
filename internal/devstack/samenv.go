package devstack

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"

	"github.com/waymarkhq/waymark/internal/routes"
)

// SAMEnvVarsFile is the file, in the state directory, that `sam local
// invoke --env-vars` reads to point the functions of the synthesized template
// at the running stack.
const SAMEnvVarsFile = "env-vars.json"

// DockerHost is the name under which a container of Docker Desktop reaches
// the host: SAM runs each function in a container, where 127.0.0.1 is the
// container itself.
const DockerHost = "host.docker.internal"

// SAMEnvVars is the content of SAMEnvVarsFile: for each function's logical
// id, the variables that configure it (the same the CDK stack sets, with the
// local table names and key) and the endpoints of the local engines, whose
// host becomes host. SAM overrides only the variables the template declares,
// and sets the region itself (`sam local invoke --region`).
func SAMEnvVars(s State, host string) map[string]map[string]string {
	cfg := s.Config()
	cfg.DynamoDBEndpoint = withHost(cfg.DynamoDBEndpoint, host)
	cfg.KMSEndpoint = withHost(cfg.KMSEndpoint, host)
	cfg.S3Endpoint = withHost(cfg.S3Endpoint, host)
	out := map[string]map[string]string{}
	for _, f := range routes.Functions() {
		out[f.LogicalID] = cfg.Env()
	}
	return out
}

// withHost replaces the host of an endpoint URL, keeping its port.
func withHost(endpoint, host string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return endpoint
	}
	if port := u.Port(); port != "" {
		u.Host = host + ":" + port
	} else {
		u.Host = host
	}
	return u.String()
}

// WriteSAMEnvVars writes SAMEnvVarsFile into dir for the stack s, with the
// engines reached at DockerHost.
func WriteSAMEnvVars(dir string, s State) error {
	b, err := json.MarshalIndent(SAMEnvVars(s, DockerHost), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, SAMEnvVarsFile), append(b, '\n'), 0o600)
}
