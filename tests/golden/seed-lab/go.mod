module wasmgen.local/wasm-example

go 1.22
