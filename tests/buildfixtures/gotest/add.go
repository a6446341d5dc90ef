// Package add is a dependency-free module for exercising wasmgen's go_test helper.
package add

// Add returns a + b.
func Add(a, b int) int { return a + b }
