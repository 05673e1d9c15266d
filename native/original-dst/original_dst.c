/*
 * getsockopt(SO_ORIGINAL_DST) for node: the address a connection was sent to before an
 * iptables REDIRECT rewrote it (netfilter keeps it in the connection's conntrack entry).
 * Node exposes no getsockopt, and no maintained npm package returns this option's
 * sockaddr, so this is the whole addon: one function, Node-API (ABI-stable across node
 * versions), IPv4 and IPv6.
 *
 *   originalDst(fd) -> { address: string, port: number, family: 4 | 6 } | null
 *
 * null when the socket was not redirected (ENOENT / ENOPROTOOPT).
 */
#include <node_api.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static napi_value original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "originalDst(fd): fd must be a number");
    return NULL;
  }
  struct sockaddr_storage addr;
  socklen_t len = sizeof(addr);
  memset(&addr, 0, sizeof(addr));
  int family = 4;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &addr, &len) != 0) {
    int err4 = errno;
    len = sizeof(addr);
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &addr, &len) != 0) {
      if (err4 == ENOENT || errno == ENOENT || err4 == ENOPROTOOPT) {
        napi_value null_value;
        napi_get_null(env, &null_value);
        return null_value;
      }
      napi_throw_error(env, NULL, strerror(err4));
      return NULL;
    }
    family = 6;
  }
  char text[INET6_ADDRSTRLEN];
  int port;
  if (addr.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr;
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    port = ntohs(a->sin6_port);
    family = 6;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&addr;
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    port = ntohs(a->sin_port);
    family = 4;
  }
  napi_value result, address, port_value, family_value;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &address);
  napi_create_int32(env, port, &port_value);
  napi_create_int32(env, family, &family_value);
  napi_set_named_property(env, result, "address", address);
  napi_set_named_property(env, result, "port", port_value);
  napi_set_named_property(env, result, "family", family_value);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "originalDst", NAPI_AUTO_LENGTH, original_dst, NULL, &fn);
  napi_set_named_property(env, exports, "originalDst", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
