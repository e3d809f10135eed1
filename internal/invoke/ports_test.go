package invoke

import "testing"

// The kernel hands a just-closed port to the next caller often (here about
// one bind in seven over 2 000); freePorts must not, or two emulators started
// in parallel are told the same port.
func TestFreePortsNeverRepeat(t *testing.T) {
	seen := map[int]bool{}
	for range 500 {
		ports, err := freePorts(2)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
}
