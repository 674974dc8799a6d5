package policy

import "strings"

// maxSuggestLen bounds the names suggest compares: the edit distance costs
// the product of the two lengths, and no name worth suggesting is longer.
const maxSuggestLen = 64

// suggest returns the name in known that name was most likely meant to be,
// for a "did you mean" hint, or "" when none is close: the same name in
// another case, else the nearest by edit distance (insertions, deletions,
// substitutions and swaps of adjacent characters, case ignored) when it is
// at most a third of name's length, and at least one. Ties go to the
// first in known.
func suggest(name string, known []string) string {
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	if len(name) > maxSuggestLen {
		return ""
	}
	limit := max(1, len([]rune(name))/3)
	best, bestDist := "", limit+1
	lower := []rune(strings.ToLower(name))
	for _, k := range known {
		// The lengths alone bound the distance from below.
		if len(k) > maxSuggestLen || abs(len([]rune(k))-len(lower)) >= bestDist {
			continue
		}
		if d := editDistance(lower, []rune(strings.ToLower(k))); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// fewest insertions, deletions, substitutions and swaps of two adjacent
// runes that turn a into b, no rune edited twice.
func editDistance(a, b []rune) int {
	// Three rows of the dynamic programme: two back (for swaps), one back,
	// and the current one.
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
