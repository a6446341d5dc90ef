// The SDK's wazero host as an independent check of the compiled plugin.wasm.
// A nested module, so that the plugin itself requires nothing.
module wasmgen.local/sdktest

go 1.24

require (
	github.com/proxy-wasm/proxy-wasm-go-sdk v0.0.0-20260105142703-44c7d5847745
	github.com/tetratelabs/wazero v1.7.2
)
