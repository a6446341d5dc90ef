"""Stage 8: compile a generated project with Go or TinyGo, reproducibly and cached; run its go tests."""
