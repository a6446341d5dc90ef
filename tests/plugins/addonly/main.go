// Command addonly adds two fixed response headers and does nothing else: the floor for
// a plugin on this SDK, in wasmgen's benchmark.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &httpContext{} })
}

type httpContext struct {
	types.DefaultHttpContext
}

func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("header_1", "first_header")
	_ = proxywasm.AddHttpResponseHeader("header_2", "second_header")
	return types.ActionContinue
}
