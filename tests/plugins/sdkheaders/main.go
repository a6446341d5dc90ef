// Command sdkheaders is a test plugin on proxy-wasm-go-sdk that edits request and
// response headers, reads properties, and can deny a request with a local response.
//
// Plugin configuration: a tag string added to every request, or "fail..." to make
// OnPluginStart fail.
package main

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &pluginContext{} })
}

type pluginContext struct {
	types.DefaultPluginContext
	tag string
}

func (p *pluginContext) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCriticalf("cannot read plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	cfg := string(data)
	if strings.HasPrefix(cfg, "fail") {
		proxywasm.LogCriticalf("invalid plugin configuration: %q", cfg)
		return types.OnPluginStartStatusFailed
	}
	p.tag = cfg
	proxywasm.LogInfof("configured with tag %q", cfg)
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext {
	return &httpContext{tag: p.tag}
}

type httpContext struct {
	types.DefaultHttpContext
	tag string
}

func stringProperty(path ...string) (string, bool) {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return "", false
	}
	return string(v), true
}

func (h *httpContext) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	proxywasm.LogDebugf("request headers: %d", numHeaders)
	if _, err := proxywasm.GetHttpRequestHeader("x-deny"); err == nil {
		proxywasm.LogWarn("denying request")
		if err := proxywasm.SendHttpResponse(403, [][2]string{{"x-denied-by", "sdkheaders"}},
			[]byte("denied by wasm\n"), -1); err != nil {
			proxywasm.LogErrorf("send local response: %v", err)
		}
		return types.ActionPause
	}
	_ = proxywasm.AddHttpRequestHeader("x-wasm-tag", h.tag)
	_ = proxywasm.ReplaceHttpRequestHeader("x-replace-me", "replaced")
	_ = proxywasm.RemoveHttpRequestHeader("x-remove-me")
	if v, ok := stringProperty("request", "path"); ok {
		_ = proxywasm.AddHttpRequestHeader("x-wasm-path", v)
	}
	if v, ok := stringProperty("source", "address"); ok {
		_ = proxywasm.AddHttpRequestHeader("x-wasm-source", v)
	}
	if v, ok := stringProperty("plugin_name"); ok {
		_ = proxywasm.AddHttpRequestHeader("x-wasm-plugin", v)
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpResponseHeaders(numHeaders int, endOfStream bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-wasm-resp", "1")
	_ = proxywasm.ReplaceHttpResponseHeader("server", "wasmgen")
	_ = proxywasm.RemoveHttpResponseHeader("x-powered-by")
	if v, err := proxywasm.GetProperty([]string{"response", "code"}); err == nil && len(v) == 8 {
		code := int64(binary.LittleEndian.Uint64(v))
		_ = proxywasm.AddHttpResponseHeader("x-wasm-status", strconv.FormatInt(code, 10))
	}
	if id, err := proxywasm.GetHttpRequestHeader("x-request-id"); err == nil {
		_ = proxywasm.AddHttpResponseHeader("x-echo-request-id", id)
	}
	return types.ActionContinue
}

func (h *httpContext) OnHttpStreamDone() {
	proxywasm.LogInfo("stream done")
}
