package testutil

import "testing"

func TestKeepInShort(t *testing.T) {
	if keptInShort(t.Name()) {
		t.Fatal("an unmarked test counts as kept")
	}
	t.Run("marked", func(t *testing.T) {
		KeepInShort(t)
		t.Run("sub", func(t *testing.T) {
			if !keptInShort(t.Name()) {
				t.Error("a subtest of a kept test is not kept")
			}
			Heavy(t, "never skipped here") // must not skip, with or without -short
			t.Log("ran")
		})
	})
	if keptInShort(t.Name() + "/marked") {
		t.Error("the mark outlived its test")
	}
	if keptInShort(t.Name() + "/markedx") {
		t.Error("a sibling test with a longer name counts as kept")
	}
}
