module reef.dev/guest

go 1.24
