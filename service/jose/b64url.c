/* base64url (RFC 4648 section 5) without padding, strict in both
 * directions: a decoded value has exactly one encoding, so a token cannot
 * be re-encoded into a second form that verifies. */
#include "jose/jws.h"

#include <limits.h>
#include <stdint.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* -1 for anything outside the url-safe alphabet (including '=', '+', '/'). */
static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

long b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen) {
  /* One leftover character carries only 6 bits: never a whole byte. */
  if (inlen % 4 == 1)
    return -1;
  size_t need = inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0);
  if (need > outlen || need > (size_t)LONG_MAX)
    return -1;

  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < inlen; i++) {
    int v = b64url_value((unsigned char)in[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (UINT32_C(1) << bits) - 1;
    }
  }
  /* Leftover bits must be zero, or two encodings would decode alike. */
  if (acc != 0)
    return -1;
  return (long)o;
}

size_t b64url_encode(const unsigned char *in, size_t inlen, char *out, size_t outlen) {
  size_t need = inlen / 3 * 4 + (inlen % 3 ? inlen % 3 + 1 : 0);
  if (need > outlen)
    return 0;

  size_t o = 0;
  size_t i = 0;
  for (; i + 3 <= inlen; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64url_alphabet[v >> 18];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
    out[o++] = b64url_alphabet[(v >> 6) & 63];
    out[o++] = b64url_alphabet[v & 63];
  }
  if (inlen - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    out[o++] = b64url_alphabet[v >> 18];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
  } else if (inlen - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    out[o++] = b64url_alphabet[v >> 18];
    out[o++] = b64url_alphabet[(v >> 12) & 63];
    out[o++] = b64url_alphabet[(v >> 6) & 63];
  }
  if (o < outlen)
    out[o] = '\0';
  return o;
}
