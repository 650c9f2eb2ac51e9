# Sourced by the benchmark scripts: writes the nginx peer's configuration.
#
# write_nginx_conf DIR ROOT PORT [TLS_PORT CERT KEY]
#   DIR/nginx.conf for Debian's nginx run as `nginx -p DIR -c DIR/nginx.conf`: 1 worker in the
#   foreground, access log off, sendfile on, tcp_nopush on, tcp_nodelay on, open_file_cache,
#   ROOT served on 127.0.0.1:PORT and, when TLS_PORT is given, over TLS 1.3 (session tickets
#   off) with CERT and KEY on 127.0.0.1:TLS_PORT. Every path it writes stays under DIR, so the
#   system's nginx and /etc/nginx are never touched.
write_nginx_conf() {
  local dir=$1 root=$2 port=$3 tls_port=${4:-} cert=${5:-} key=${6:-}
  local user_line="" tls_server=""
  [[ $(id -u) -eq 0 ]] && user_line="user root;"  # workers must read the bazel-bin root
  mkdir -p "$dir"
  if [[ -n $tls_port ]]; then
    tls_server="  server {
    listen 127.0.0.1:$tls_port ssl;
    root $root;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
  }"
  fi
  cat >"$dir/nginx.conf" <<CONF
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  open_file_cache max=1000 inactive=60s;
  open_file_cache_valid 60s;
  default_type application/octet-stream;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen 127.0.0.1:$port;
    root $root;
  }
$tls_server
}
CONF
}
