module reef.dev/examples/nested

go 1.24

require reef.dev/guest v0.0.0

replace reef.dev/guest => ../..
