//go:build !unix

package policy

import "time"

// cpuTime is not measured here; BenchmarkLoad then reports cpu-ms as 0.
func cpuTime() time.Duration { return 0 }
