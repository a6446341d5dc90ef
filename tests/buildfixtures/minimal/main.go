// Package main is a minimal proxy-wasm plugin used by wasmgen's build tests.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func init() {
	proxywasm.SetHttpContext(func(contextID uint32) types.HttpContext {
		return &httpContext{}
	})
}

// main never runs under -buildmode=c-shared, but package main needs it.
func main() {}

type httpContext struct {
	types.DefaultHttpContext
}

// OnHttpResponseHeaders adds one header to every response.
func (*httpContext) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-wasmgen-fixture", "minimal"); err != nil {
		proxywasm.LogCriticalf("add header: %v", err)
	}
	return types.ActionContinue
}
