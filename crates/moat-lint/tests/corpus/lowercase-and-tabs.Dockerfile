from alpine:3.20 as base
	run	apk add --no-cache tini=0.19.0-r3
workdir /srv
copy . .
  user 1000:1000
entrypoint ["/sbin/tini", "--"]
cmd ["./server"]
