// The Go piece of the cross-language pipeline: merge_counts sums word counts.
package main

import (
	reef "reef.dev/guest"
)

// mergeCounts is merge_counts(a: map, b: map, ...) -> map {str: u64}: the sum of any
// number of {word: count} maps (arguments inline or objects, e.g. count_tokens results).
func mergeCounts(args reef.Args) (any, error) {
	total := map[string]uint64{}
	for i := 0; i < args.Len(); i++ {
		var counts map[string]uint64
		if err := args.Decode(i, &counts); err != nil {
			return nil, err
		}
		for word, n := range counts {
			if total[word]+n < n {
				return nil, reef.Errorf(reef.CodeBadArgument, "the count of %q overflows a u64", word)
			}
			total[word] += n
		}
	}
	return total, nil
}

func init() {
	reef.Task("merge_counts", mergeCounts)
}

func main() {}
