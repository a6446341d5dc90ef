;; The least a wasm filter can be that sets the lab's two response headers: no runtime, no
;; allocator worth the name, five exports and one host function. Envoy's CPU and memory for
;; this module are its own cost of running a wasm filter at all, the floor under any plugin;
;; tests/benchmark_envoy.py measures it beside native header_mutation and wasmgen's plugins.
(module
  (import "env" "proxy_replace_header_map_value"
    (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "header_1first_headerheader_2second_header")
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_abi_version_0_2_1"))
  ;; The host copies configuration here; a bump allocator that grows memory as needed.
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow
        (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))))))
    (local.get $at))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  ;; Map type 2 is the response headers; action 0 is Continue.
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $replace (i32.const 2) (i32.const 1024) (i32.const 8) (i32.const 1032) (i32.const 12)))
    (drop (call $replace (i32.const 2) (i32.const 1044) (i32.const 8) (i32.const 1052) (i32.const 13)))
    (i32.const 0))
)
