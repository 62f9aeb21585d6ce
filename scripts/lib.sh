# Shared by scripts/run, scripts/test and scripts/bench: install what a fresh
# Debian 12 machine lacks, then configure and build in a build directory.

BRACED_TOP=$(cd "$(dirname "$0")/.." && pwd)

# Debian packages braced needs to build, test and run.
BRACED_PACKAGES="build-essential autoconf automake libtool pkg-config \
libevent-dev libssl-dev libcurl4-openssl-dev libjson-c-dev libyaml-dev zlib1g-dev check \
python3 curl ca-certificates clang-format openssl libpcre2-dev libidn2-dev json-schema-test-suite systemd nghttp2-server \
node-llhttp libhiredis-dev redis-server dnsmasq-base"

braced_install_deps() {
	missing=""
	for p in $BRACED_PACKAGES "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "installing:$missing"
	sudo_cmd=""
	[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		{ echo "apt-get install failed for:$missing" >&2; return 1; }
}

# braced_build DIR [configure options...]: an out-of-tree build in DIR.
braced_build() {
	dir=$1
	shift
	cd "$BRACED_TOP" || return 1
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
		autoreconf -fi >/dev/null 2>&1 || { autoreconf -fi; return 1; }
	fi
	mkdir -p "$dir" && cd "$dir" || return 1
	stamp="$*"
	if [ ! -f Makefile ] || [ "$(cat .configured 2>/dev/null)" != "$stamp" ]; then
		"$BRACED_TOP/configure" "$@" >configure.out 2>&1 || { cat configure.out; return 1; }
		echo "$stamp" >.configured
	fi
	make -j"$(nproc)" >make.out 2>&1 || { cat make.out; return 1; }
	cd "$BRACED_TOP" || return 1
}

# promtool from Debian's prometheus package, unpacked into build-tools/ but
# not installed: installing the package would start a Prometheus server.
# Prints the directory that holds promtool.
braced_promtool() {
	dir=$BRACED_TOP/build-tools
	if [ ! -x "$dir/usr/bin/promtool" ]; then
		mkdir -p "$dir" || return 1
		(cd "$dir" && { apt-get download prometheus >/dev/null 2>&1 ||
			{ apt-get update -qq && apt-get download prometheus >/dev/null; }; } &&
			dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb) || return 1
	fi
	echo "$dir/usr/bin"
}
