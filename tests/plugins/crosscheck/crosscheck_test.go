// Package crosscheck runs a compiled plugin under the SDK's own wazero-based host
// (proxytest.NewWasmVMContext) so wasmgen's Python host can be compared against it.
//
// Inputs come from environment variables (the test skips without them):
// CROSSCHECK_WASM (path to the .wasm), CROSSCHECK_INPUT (JSON, see input), and
// CROSSCHECK_OUTPUT (where the JSON result is written).
package crosscheck

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

type input struct {
	PluginConfig    string            `json:"plugin_config"`
	Properties      map[string]string `json:"properties"` // dotted path -> hex bytes
	RequestHeaders  [][2]string       `json:"request_headers"`
	ResponseHeaders [][2]string       `json:"response_headers"`
}

type localResponse struct {
	Status  uint32      `json:"status"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
	Details string      `json:"details"`
}

type output struct {
	Configured      bool           `json:"configured"`
	RequestAction   int            `json:"request_action"`
	ResponseAction  int            `json:"response_action"`
	RequestHeaders  [][2]string    `json:"request_headers"`
	ResponseHeaders [][2]string    `json:"response_headers"`
	LocalResponse   *localResponse `json:"local_response"`
	InfoLogs        []string       `json:"info_logs"`
	CriticalLogs    []string       `json:"critical_logs"`
}

func TestCrossCheck(t *testing.T) {
	wasmPath := os.Getenv("CROSSCHECK_WASM")
	if wasmPath == "" {
		t.Skip("CROSSCHECK_WASM not set")
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(os.Getenv("CROSSCHECK_INPUT"))
	if err != nil {
		t.Fatal(err)
	}
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	vm, err := proxytest.NewWasmVMContext(wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()

	opt := proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration([]byte(in.PluginConfig))
	for path, value := range in.Properties {
		b, err := hex.DecodeString(value)
		if err != nil {
			t.Fatal(err)
		}
		opt = opt.WithProperty(strings.Split(path, "."), b)
	}
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()

	out := output{Configured: host.StartPlugin() == types.OnPluginStartStatusOK}
	id := host.InitializeHttpContext()
	out.RequestAction = int(host.CallOnRequestHeaders(id, in.RequestHeaders, false))
	if lr := host.GetSentLocalResponse(id); lr != nil {
		out.LocalResponse = &localResponse{lr.StatusCode, lr.Headers, string(lr.Data), lr.StatusCodeDetail}
	} else {
		out.ResponseAction = int(host.CallOnResponseHeaders(id, in.ResponseHeaders, false))
	}
	host.CompleteHttpContext(id)
	out.RequestHeaders = host.GetCurrentRequestHeaders(id)
	out.ResponseHeaders = host.GetCurrentResponseHeaders(id)
	out.InfoLogs = host.GetInfoLogs()
	out.CriticalLogs = host.GetCriticalLogs()

	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv("CROSSCHECK_OUTPUT"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
