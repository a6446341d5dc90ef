package add

import (
	"os"
	"testing"
)

func TestAdd(t *testing.T) {
	if got := Add(2, 3); got != 5 {
		t.Fatalf("Add(2, 3) = %d, want 5", got)
	}
	// The test suite sets this to check that failures come back with file:line.
	if os.Getenv("WASMGEN_FIXTURE_FAIL") == "1" {
		t.Fatalf("failing on request")
	}
}
