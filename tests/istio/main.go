// Command istioharness runs Istio's own code on a wasmgen project's manifests, with no cluster:
// istiod's admission checks (the CRD's OpenAPI and CEL rules, and the validation webhook's Go
// code), istiod's translation of a WasmPlugin into the listener filter chain and the ECDS resource
// of a workload it selects, and istio-agent's conversion of that ECDS resource, which pulls the
// image from its registry into a local file.
//
// Which Istio: the version go.mod pins (ISTIO.md records its commit and date).
//
// Exported API used: pilot/pkg/config/kube/crd.ParseInputs (the YAML reader istioctl uses),
// pkg/config/schema/collections (the schema and webhook validation), pkg/config/crd.Validator
// (apiserver's structural schema and CEL code on Istio's CRD bundle), the ECDS generator that
// istiod's DiscoveryServer registers, and pkg/wasm (the agent's converter and image cache).
// Reached only through Istio's test helpers: pilot/test/xds.NewFakeDiscoveryServer, which wires
// a whole istiod (config store, WasmPlugin->TrafficExtension controller, service registries,
// Kubernetes secrets through a fake client, ECDS generator) in one process; there is no
// exported constructor for that outside istiod's main.
//
// Usage: istioharness < request.json, one JSON report per round on stdout. Between rounds it
// reads one line from stdin, so a test can change the registry in between (image pull policy).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/constants"
	crdvalidation "istio.io/istio/pkg/config/crd"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/spiffe"
	"istio.io/istio/pkg/util/sets"
	"istio.io/istio/pkg/wasm"
	"istio.io/istio/pkg/wellknown"
)

// Request is what the test asks for.
type Request struct {
	Manifests   string            `json:"manifests"`   // WasmPlugin documents, as deploy/ holds them
	KubeObjects string            `json:"kubeObjects"` // Secrets (kubernetes.io/dockerconfigjson)
	Proxy       string            `json:"proxy"`       // "sidecar" or "gateway"
	Namespace   string            `json:"namespace"`   // the workload's namespace
	Labels      map[string]string `json:"labels"`      // the workload's labels
	CRDFile     string            `json:"crdFile"`     // Istio's CRD bundle for the admission check
	CacheDir    string            `json:"cacheDir"`    // the agent's wasm module cache
	Insecure    []string          `json:"insecureRegistries"`
	SkipConvert bool              `json:"skipConvert"` // stop after istiod (no image pull)
	Rounds      []Round           `json:"rounds"`      // default: one round
}

// Round is one push of the configuration to the workload.
type Round struct {
	ResourceVersion string `json:"resourceVersion"` // what Kubernetes would stamp on the WasmPlugins
}

// Report is what Istio made of it.
type Report struct {
	Admission  []Admission       `json:"admission"`
	Accepted   bool              `json:"accepted"`
	Listeners  []Listener        `json:"listeners,omitempty"`
	ECDS       []json.RawMessage `json:"ecds,omitempty"`
	Converted  []json.RawMessage `json:"converted,omitempty"`
	ConvertErr string            `json:"convertError,omitempty"`
}

// Admission is the verdict on one document.
type Admission struct {
	Name     string   `json:"name"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

// Listener is one listener's HTTP filter chains.
type Listener struct {
	Name   string  `json:"name"`
	Chains []Chain `json:"chains"`
}

// Chain is one filter chain's HTTP filters, in order.
type Chain struct {
	Name    string   `json:"name"`
	Filters []Filter `json:"filters"`
}

// Filter is one HTTP filter: its name and either its typed config or that it comes from ECDS.
type Filter struct {
	Name   string          `json:"name"`
	Config json.RawMessage `json:"typedConfig,omitempty"`
	ECDS   bool            `json:"ecds,omitempty"`
}

func main() {
	log.EnableKlogWithVerbosity(0)
	opts := log.DefaultOptions()
	opts.SetDefaultOutputLevel(log.OverrideScopeName, log.ErrorLevel)
	opts.OutputPaths = []string{"stderr"}
	opts.ErrorOutputPaths = []string{"stderr"}
	if err := log.Configure(opts); err != nil {
		fail(err)
	}
	var req Request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fail(fmt.Errorf("reading the request: %w", err))
	}
	if len(req.Rounds) == 0 {
		req.Rounds = []Round{{ResourceVersion: "1"}}
	}
	if err := os.MkdirAll(req.CacheDir, 0o755); err != nil { // istio-agent makes it on start
		fail(err)
	}
	cacheOpts := wasm.Options{InsecureRegistries: sets.New(req.Insecure...)}
	cache := wasm.NewLocalFileCache(req.CacheDir, cacheOpts)
	defer cache.Cleanup()
	stdin := bufio.NewReader(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for i, round := range req.Rounds {
		if i > 0 {
			if _, err := stdin.ReadString('\n'); err != nil {
				fail(fmt.Errorf("waiting for round %d: %w", i+1, err))
			}
		}
		rep, err := run(req, round, cache)
		if err != nil {
			fail(err)
		}
		if err := out.Encode(rep); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "istioharness:", err)
	os.Exit(2)
}

func run(req Request, round Round, cache wasm.Cache) (*Report, error) {
	configs, admission, err := admit(req)
	if err != nil {
		return nil, err
	}
	rep := &Report{Admission: admission, Accepted: true}
	for _, a := range admission {
		if len(a.Errors) > 0 {
			rep.Accepted = false
		}
	}
	if !rep.Accepted {
		return rep, nil
	}
	for i := range configs {
		configs[i].ResourceVersion = round.ResourceVersion
	}
	t := &failer{}
	defer t.done()
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		Configs:                append(configs, workloadConfigs(req)...),
		KubernetesObjectString: req.KubeObjects,
	})
	if t.err != nil {
		return nil, t.err
	}
	proxy := s.SetupProxy(newProxy(req))
	listeners := s.Listeners(proxy)
	names := sets.New[string]()
	rep.Listeners = summarize(listeners, names)
	gen := s.Discovery.Generators[v3.ExtensionConfigurationType]
	push := &model.PushRequest{Forced: true, Push: s.PushContext(), Start: time.Now()}
	resources, _, err := gen.Generate(proxy, &model.WatchedResource{ResourceNames: names}, push)
	if err != nil {
		return nil, fmt.Errorf("ECDS: %w", err)
	}
	anys := make([]*anypb.Any, 0, len(resources))
	for _, r := range resources {
		rep.ECDS = append(rep.ECDS, mustJSON(r.Resource))
		anys = append(anys, r.Resource)
	}
	if req.SkipConvert {
		return rep, t.err
	}
	// The agent rewrites the resources in place, as its xDS proxy does before Envoy sees them.
	if err := wasm.MaybeConvertWasmExtensionConfig(anys, cache); err != nil {
		rep.ConvertErr = err.Error()
	}
	for _, a := range anys {
		ec := &core.TypedExtensionConfig{}
		if err := a.UnmarshalTo(ec); err != nil {
			return nil, err
		}
		rep.Converted = append(rep.Converted, mustJSON(ec))
	}
	return rep, t.err
}

// admit reads the manifests as istioctl does and runs both of istiod's admission checks.
func admit(req Request) ([]config.Config, []Admission, error) {
	validator, err := crdvalidation.NewValidatorFromFiles(req.CRDFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s: %w", req.CRDFile, err)
	}
	var configs []config.Config
	var out []Admission
	for _, doc := range splitYAML(req.Manifests) {
		a := Admission{Name: "?", Errors: []string{}, Warnings: []string{}}
		if err := validator.ValidateCustomResourceYAML(doc, nil); err != nil {
			a.Errors = append(a.Errors, "crd: "+err.Error())
		}
		parsed, _, err := crd.ParseInputs(doc)
		switch {
		case err != nil:
			a.Errors = append(a.Errors, "parse: "+err.Error())
		case len(parsed) != 1 || parsed[0].GroupVersionKind != gvk.WasmPlugin:
			a.Errors = append(a.Errors, "parse: not one WasmPlugin")
		default:
			cfg := parsed[0]
			a.Name = cfg.Namespace + "/" + cfg.Name
			warn, err := collections.WasmPlugin.ValidateConfig(cfg)
			if err != nil {
				a.Errors = append(a.Errors, "webhook: "+err.Error())
			}
			if warn != nil {
				a.Warnings = append(a.Warnings, warn.Error())
			}
			configs = append(configs, cfg)
		}
		out = append(out, a)
	}
	return configs, out, nil
}

func splitYAML(s string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+s, "\n---") {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

// workloadConfigs gives istiod a workload with an HTTP port for the plugin to attach to: for a
// sidecar a ServiceEntry selecting a WorkloadEntry at the proxy's address (no Kubernetes needed
// for endpoints), for a gateway an Istio Gateway with an HTTP server on port 8080 and a route.
func workloadConfigs(req Request) []config.Config {
	yaml := fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: workload, namespace: %[1]s}
spec:
  hosts: [workload.%[1]s.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  workloadSelector: {labels: %[2]s}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: workload, namespace: %[1]s}
spec: {address: 10.0.0.1, labels: %[2]s}
`, req.Namespace, flowMap(req.Labels))
	if req.Proxy == "gateway" {
		yaml += fmt.Sprintf(`---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gateway, namespace: %[1]s}
spec:
  selector: %[2]s
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: route, namespace: %[1]s}
spec:
  hosts: ["*"]
  gateways: [gateway]
  http: [{route: [{destination: {host: workload.%[1]s.svc.cluster.local, port: {number: 8000}}}]}]
`, req.Namespace, flowMap(req.Labels))
	}
	configs, _, err := crd.ParseInputs(yaml)
	if err != nil {
		fail(fmt.Errorf("workload configs: %w", err))
	}
	return configs
}

func flowMap(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%q: %q", k, v))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func newProxy(req Request) *model.Proxy {
	p := &model.Proxy{
		Type:             model.SidecarProxy,
		Labels:           req.Labels,
		IPAddresses:      []string{"10.0.0.1"},
		ConfigNamespace:  req.Namespace,
		VerifiedIdentity: &spiffe.Identity{Namespace: req.Namespace, ServiceAccount: "default"},
		Metadata: &model.NodeMetadata{
			ClusterID:    constants.DefaultClusterName,
			Labels:       req.Labels,
			Namespace:    req.Namespace,
			IstioVersion: "1.28.0",
		},
	}
	if req.Proxy == "gateway" {
		p.Type = model.Router
		p.IPAddresses = []string{"10.0.0.2"}
	}
	return p
}

// summarize lists each listener's HTTP filters and collects the ECDS names they refer to.
func summarize(listeners []*listener.Listener, ecds sets.Set[string]) []Listener {
	var out []Listener
	for _, l := range listeners {
		sl := Listener{Name: l.Name, Chains: []Chain{}}
		chains := append([]*listener.FilterChain{}, l.FilterChains...)
		if l.DefaultFilterChain != nil {
			chains = append(chains, l.DefaultFilterChain)
		}
		for _, fc := range chains {
			for _, nf := range fc.Filters {
				if nf.Name != wellknown.HTTPConnectionManager {
					continue
				}
				h := &hcm.HttpConnectionManager{}
				if err := nf.GetTypedConfig().UnmarshalTo(h); err != nil {
					fail(err)
				}
				c := Chain{Name: fc.Name, Filters: []Filter{}}
				for _, hf := range h.HttpFilters {
					f := Filter{Name: hf.Name}
					if hf.GetConfigDiscovery() != nil {
						f.ECDS = true
						ecds.Insert(hf.Name)
					} else {
						f.Config = mustJSON(hf.GetTypedConfig())
					}
					c.Filters = append(c.Filters, f)
				}
				sl.Chains = append(sl.Chains, c)
			}
		}
		out = append(out, sl)
	}
	return out
}

func mustJSON(a proto.Message) json.RawMessage {
	b, err := protojson.Marshal(a)
	if err != nil {
		fail(err)
	}
	return b
}

// failer is the test.Failer Istio's fake server wants; a failure is an error, not a panic.
type failer struct {
	err      error
	cleanups []func()
}

func (f *failer) Fail()                          { f.setErr("failed") }
func (f *failer) FailNow()                       { fail(f.errOr("failed")) }
func (f *failer) Fatal(args ...any)              { fail(fmt.Errorf("%s", fmt.Sprint(args...))) }
func (f *failer) Fatalf(format string, a ...any) { fail(fmt.Errorf(format, a...)) }
func (f *failer) Log(args ...any)                { fmt.Fprintln(os.Stderr, args...) }
func (f *failer) Logf(format string, a ...any)   { fmt.Fprintf(os.Stderr, format+"\n", a...) }
func (f *failer) Helper()                        {}
func (f *failer) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }
func (f *failer) Skip(args ...any)               { fail(fmt.Errorf("skip: %s", fmt.Sprint(args...))) }

func (f *failer) TempDir() string {
	d, err := os.MkdirTemp("", "istioharness")
	if err != nil {
		fail(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func (f *failer) setErr(msg string) {
	if f.err == nil {
		f.err = fmt.Errorf("%s", msg)
	}
}

func (f *failer) errOr(msg string) error {
	if f.err != nil {
		return f.err
	}
	return fmt.Errorf("%s", msg)
}

func (f *failer) done() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}
