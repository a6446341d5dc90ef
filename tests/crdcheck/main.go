// Command crdcheck validates Istio WasmPlugin manifests offline against the
// WasmPlugin CRD shipped in the istio.io/api module, running the same
// apiextensions-apiserver code kube-apiserver runs on create: strict decoding
// (unknown and duplicate fields), type meta, object meta, the structural
// OpenAPI schema, list-type invariants and the CEL x-kubernetes-validations.
//
// Usage: crdcheck [-crd FILE] [-skip-other-kinds] [FILE|- ...]
//
// One line per problem goes to stdout as "SOURCE#DOC KIND/NAME: FIELD: MESSAGE".
// Exit status: 0 all documents valid, 1 a document is invalid, 2 usage or I/O error.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	// Keeps istio.io/api a direct requirement (so `go list -m istio.io/api`
	// resolves and the build downloads it); the package itself is tiny.
	_ "istio.io/api/label"
)

const (
	group   = "extensions.istio.io"
	kind    = "WasmPlugin"
	crdPath = "kubernetes/customresourcedefinitions.gen.yaml"
)

// checker holds the compiled schema of one CRD version.
type checker struct {
	apiVersion string
	structural *structuralschema.Structural
	schema     validation.SchemaValidator
	cel        *cel.Validator
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("crdcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	crdFile := fs.String("crd", "", "CRD bundle (default: "+crdPath+" in the istio.io/api module)")
	skipOther := fs.Bool("skip-other-kinds", false, "ignore documents that are not WasmPlugins instead of failing them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path := *crdFile
	if path == "" || path == "<nil>" {
		dir, err := istioAPIDir()
		if err != nil {
			fmt.Fprintf(stderr, "crdcheck: locating istio.io/api: %v (pass -crd)\n", err)
			return 2
		}
		path = filepath.Join(dir, crdPath)
	}
	chk, err := loadChecker(path)
	if err != nil {
		fmt.Fprintf(stderr, "crdcheck: %v\n", err)
		return 2
	}
	sources := fs.Args()
	if len(sources) == 0 {
		sources = []string{"-"}
	}
	checked, invalid := 0, false
	for _, src := range sources {
		data, err := readSource(src, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "crdcheck: %v\n", err)
			return 2
		}
		docs, err := splitDocs(data)
		if err != nil {
			fmt.Fprintf(stderr, "crdcheck: %s: %v\n", src, err)
			return 2
		}
		for i, doc := range docs {
			label := fmt.Sprintf("%s#%d", displayName(src), i)
			obj, errs := decode(doc)
			if errs == nil && *skipOther && !isWasmPlugin(obj) {
				continue
			}
			if errs == nil {
				errs = chk.validate(obj)
			}
			checked++
			for _, e := range errs {
				invalid = true
				fmt.Fprintf(stdout, "%s %s: %s\n", label, objectName(obj), oneLine(e))
			}
		}
	}
	if checked == 0 {
		fmt.Fprintln(stderr, "crdcheck: no documents to check")
		return 2
	}
	if invalid {
		return 1
	}
	return 0
}

// istioAPIDir asks the go command where the istio.io/api module lives.
func istioAPIDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%v: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return "", err
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", errors.New("module not downloaded (run `go mod download istio.io/api`)")
	}
	return dir, nil
}

func readSource(src string, stdin io.Reader) ([]byte, error) {
	if src == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(src)
}

func displayName(src string) string {
	if src == "-" {
		return "<stdin>"
	}
	return src
}

// splitDocs splits a multi-document YAML stream, dropping empty documents.
func splitDocs(data []byte) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if isBlank(doc) {
			continue
		}
		docs = append(docs, doc)
	}
}

// isBlank reports whether a YAML document holds only comments and whitespace.
func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return false
		}
	}
	return true
}

// decode parses one document strictly (duplicate keys fail), numbers as int64/float64 like the apiserver.
func decode(doc []byte) (map[string]interface{}, field.ErrorList) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, field.ErrorList{field.Invalid(nil, field.OmitValueType{}, "decoding YAML: "+err.Error())}
	}
	var obj map[string]interface{}
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		return nil, field.ErrorList{field.Invalid(nil, field.OmitValueType{}, "decoding JSON: "+err.Error())}
	}
	if obj == nil {
		return nil, field.ErrorList{field.Invalid(nil, field.OmitValueType{}, "document is not an object")}
	}
	return obj, nil
}

func isWasmPlugin(obj map[string]interface{}) bool {
	k, _ := obj["kind"].(string)
	av, _ := obj["apiVersion"].(string)
	return k == kind && strings.HasPrefix(av, group+"/")
}

func objectName(obj map[string]interface{}) string {
	k, _ := obj["kind"].(string)
	name := ""
	if md, ok := obj["metadata"].(map[string]interface{}); ok {
		name, _ = md["name"].(string)
	}
	if k == "" {
		k = "?"
	}
	if name == "" {
		name = "?"
	}
	return k + "/" + name
}

// oneLine renders a field error as "PATH: BODY" on a single line.
func oneLine(e *field.Error) string {
	path := e.Field
	if path == "" || path == "<nil>" {
		path = "<root>"
	}
	return path + ": " + strings.Join(strings.Fields(e.ErrorBody()), " ")
}

// loadChecker finds the WasmPlugin CRD in a bundle and compiles its storage version's schema.
func loadChecker(path string) (*checker, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	docs, err := splitDocs(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, doc := range docs {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(doc, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if crd.Kind != "CustomResourceDefinition" || crd.Spec.Group != group || crd.Spec.Names.Kind != kind {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Storage && v.Schema != nil {
				return newChecker(group+"/"+v.Name, v.Schema)
			}
		}
		return nil, fmt.Errorf("%s: %s CRD has no storage version with a schema", path, kind)
	}
	return nil, fmt.Errorf("%s: no %s.%s CRD found", path, kind, group)
}

func newChecker(apiVersion string, v1 *apiextensionsv1.CustomResourceValidation) (*checker, error) {
	internal := &apiextensionsinternal.CustomResourceValidation{}
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(v1, internal, nil); err != nil {
		return nil, fmt.Errorf("converting CRD schema: %w", err)
	}
	s, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("CRD schema is not structural: %w", err)
	}
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		return nil, fmt.Errorf("pruning CRD defaults: %w", err)
	}
	sv, _, err := validation.NewSchemaValidator(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("building schema validator: %w", err)
	}
	return &checker{
		apiVersion: apiVersion,
		structural: s,
		schema:     sv,
		cel:        cel.NewValidator(s, true, celconfig.PerCallLimit),
	}, nil
}

// validate mirrors kube-apiserver's create path for a custom resource in strict field-validation mode.
func (c *checker) validate(obj map[string]interface{}) field.ErrorList {
	var errs field.ErrorList
	if k, _ := obj["kind"].(string); k != kind {
		errs = append(errs, field.Invalid(field.NewPath("kind"), obj["kind"], "must be "+kind))
	}
	if av, _ := obj["apiVersion"].(string); av != c.apiVersion {
		errs = append(errs, field.Invalid(field.NewPath("apiVersion"), obj["apiVersion"], "must be "+c.apiVersion))
	}
	if len(errs) > 0 {
		return errs
	}

	// Strict decoding: unknown metadata fields and pruned (unknown) fields are errors, as with kubectl's default.
	meta, _, unknownMeta, err := schemaobjectmeta.GetObjectMetaWithOptions(obj, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return field.ErrorList{field.Invalid(field.NewPath("metadata"), nil, err.Error())}
	}
	unknown := append([]string{}, unknownMeta...)
	unknown = append(unknown, structuralpruning.PruneWithOptions(obj, c.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
	for _, p := range unknown {
		errs = append(errs, field.Forbidden(field.NewPath(p), "unknown field"))
	}
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(obj, c.structural)

	if meta.Namespace == "" {
		meta.Namespace = "default" // kubectl fills in the context's namespace
	}
	errs = append(errs, apivalidation.ValidateObjectMeta(meta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
	errs = append(errs, validation.ValidateCustomResource(nil, obj, c.schema)...)
	ctx := context.Background()
	errs = append(errs, schemaobjectmeta.Validate(ctx, nil, obj, c.structural, false)...)
	errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, c.structural, obj)...)
	if c.cel != nil {
		if blocked := blockingErr(errs); blocked != nil {
			errs = append(errs, blocked)
		} else {
			celErrs, _ := c.cel.Validate(ctx, nil, c.structural, obj, nil, celconfig.RuntimeCELCostBudget)
			errs = append(errs, celErrs...)
		}
	}
	return errs
}

// blockingErr reproduces the apiserver rule that skips CEL when the object is structurally broken.
func blockingErr(errs field.ErrorList) *field.Error {
	for _, e := range errs {
		switch e.Type {
		case field.ErrorTypeNotSupported, field.ErrorTypeRequired, field.ErrorTypeTooLong,
			field.ErrorTypeTooMany, field.ErrorTypeTypeInvalid:
			return field.Invalid(nil, field.OmitValueType{}, "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation")
		}
	}
	return nil
}
