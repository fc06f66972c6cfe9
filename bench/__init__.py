"""accountdesk benchmarks: `python -m bench --help`. Prints figures and ratios; never asserts timings."""
