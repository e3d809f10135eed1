package stack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/routes"
)

// TestSAMReadsTheEUTemplate checks what the README's `sam local invoke -t
// cdk.out/Waymark-eu.template.json IdentifyFunction -e ... --env-vars ...`
// reads: the template file it names, as written to the cloud assembly; a
// function under each documented logical id; asset metadata that leads to
// the directory holding that function's own bootstrap (the placeholders of
// TestMain say whose they are); and the variables the env-vars file of `make
// dev` sets, which SAM overrides only where the template declares them.
func TestSAMReadsTheEUTemplate(t *testing.T) {
	app := defaultApp(t)
	stack := app.stacks[0]
	if got := *stack.TemplateFile(); got != "Waymark-eu.template.json" {
		t.Fatalf("template file %s, want Waymark-eu.template.json as the README says", got)
	}
	outdir := *awscdk.Stage_Of(stack).Outdir()
	b, err := os.ReadFile(filepath.Join(outdir, *stack.TemplateFile()))
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	local := config.Config{Tables: config.LocalTables(""), KMSKeyID: "k", DynamoDBEndpoint: "e", KMSEndpoint: "e"}.Env()
	for _, f := range routes.Functions() {
		t.Run(f.LogicalID, func(t *testing.T) {
			res := tpl.resource(t, f.LogicalID, "AWS::Lambda::Function")
			md, _ := res["Metadata"].(map[string]interface{})
			path, _ := md["aws:asset:path"].(string)
			if path == "" || md["aws:asset:property"] != "Code" {
				t.Fatalf("asset metadata %v: SAM finds the code through aws:asset:path and aws:asset:property Code", md)
			}
			bootstrap, err := os.ReadFile(filepath.Join(outdir, path, "bootstrap"))
			if err != nil {
				t.Fatalf("the asset of %s: %v", f.LogicalID, err)
			}
			if got, want := string(bootstrap), "placeholder "+f.Name; got != want {
				t.Errorf("the asset of %s holds the bootstrap of %q, want %q", f.LogicalID, got, want)
			}
			env, _ := props(res)["Environment"].(map[string]interface{})
			vars, _ := env["Variables"].(map[string]interface{})
			for name := range local {
				if _, ok := vars[name]; !ok {
					t.Errorf("%s is not declared, so `sam local invoke --env-vars` cannot set it", name)
				}
			}
		})
	}
}
