// SHA-256 of files and bytes in the browser, so a document never leaves the device.
//
// WebCrypto (crypto.subtle) does the work in a secure context (HTTPS or localhost). Over
// plain HTTP on another host browsers hide crypto.subtle, so a small FIPS 180-4
// implementation takes over; it also hashes very large files in chunks.

const WEBCRYPTO_MAX_BYTES = 256 * 1024 * 1024; // above this, stream instead of one buffer
const CHUNK_BYTES = 4 * 1024 * 1024;

export const hasWebCrypto = () => Boolean(globalThis.crypto && globalThis.crypto.subtle);

// floor(n ** (1 / k)) for a positive BigInt, by Newton's method from above.
function integerRoot(n, k) {
  const K = BigInt(k);
  let x = 1n << BigInt(Math.ceil(n.toString(2).length / k));
  for (;;) {
    const y = ((K - 1n) * x + n / x ** (K - 1n)) / K;
    if (y >= x) return x;
    x = y;
  }
}

function firstPrimes(count) {
  const primes = [];
  for (let c = 2; primes.length < count; c++) if (primes.every((p) => c % p)) primes.push(c);
  return primes;
}

// The first `bits` bits of the fractional parts of the square (root = 2) or cube (root = 3)
// roots of the first `count` primes: the constants of FIPS 180-4 section 4.2 and 5.3,
// computed exactly instead of copied by hand.
export function fractionalRoots(count, root, bits) {
  const mask = (1n << BigInt(bits)) - 1n;
  return firstPrimes(count).map((p) => integerRoot(BigInt(p) << BigInt(bits * root), root) & mask);
}

const K = Uint32Array.from(fractionalRoots(64, 3, 32), Number);
const H0 = Uint32Array.from(fractionalRoots(8, 2, 32), Number);
const rotr = (x, n) => (x >>> n) | (x << (32 - n));

/** Incremental SHA-256: `new Sha256().update(bytes).update(more).digest()`. */
export class Sha256 {
  constructor() {
    this.h = H0.slice();
    this.w = new Uint32Array(64);
    this.buffer = new Uint8Array(64);
    this.buffered = 0;
    this.length = 0; // bytes so far; exact up to 2 ** 53
  }

  update(data) {
    let i = 0;
    this.length += data.length;
    if (this.buffered) {
      i = Math.min(64 - this.buffered, data.length);
      this.buffer.set(data.subarray(0, i), this.buffered);
      this.buffered += i;
      if (this.buffered < 64) return this;
      this.compress(this.buffer, 0);
      this.buffered = 0;
    }
    for (; i + 64 <= data.length; i += 64) this.compress(data, i);
    this.buffer.set(data.subarray(i), 0);
    this.buffered = data.length - i;
    return this;
  }

  digest() {
    const bits = this.length * 8;
    const pad = new Uint8Array((this.buffered < 56 ? 64 : 128) - this.buffered);
    const view = new DataView(pad.buffer);
    pad[0] = 0x80;
    view.setUint32(pad.length - 8, Math.floor(bits / 2 ** 32));
    view.setUint32(pad.length - 4, bits >>> 0);
    this.update(pad);
    const out = new Uint8Array(32);
    const ov = new DataView(out.buffer);
    this.h.forEach((word, j) => ov.setUint32(4 * j, word));
    return out;
  }

  compress(data, offset) {
    const w = this.w;
    for (let t = 0; t < 16; t++) {
      const o = offset + 4 * t;
      w[t] = (data[o] << 24) | (data[o + 1] << 16) | (data[o + 2] << 8) | data[o + 3];
    }
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15];
      const y = w[t - 2];
      const s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
      const s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1; // Uint32Array stores modulo 2 ** 32
    }
    let [a, b, c, d, e, f, g, h] = this.h;
    for (let t = 0; t < 64; t++) {
      const s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
      const s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    const s = this.h;
    s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
  }
}

export const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** Bytes of a hex string, or null unless it is an even number of hex digits. */
export function fromHex(hex) {
  if (typeof hex !== "string" || !/^(?:[0-9a-fA-F]{2})*$/.test(hex)) return null;
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/** SHA-256 of bytes, as bytes. */
export async function sha256(bytes) {
  if (hasWebCrypto()) return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return new Sha256().update(bytes).digest();
}

/** Lowercase hex SHA-256 of a File or Blob; `onProgress(done, total)` while streaming. */
export async function hashFile(file, onProgress = () => {}) {
  if (hasWebCrypto() && file.size <= WEBCRYPTO_MAX_BYTES) {
    const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return toHex(new Uint8Array(digest));
  }
  const hash = new Sha256();
  for (let offset = 0; offset < file.size; offset += CHUNK_BYTES) {
    const chunk = await file.slice(offset, offset + CHUNK_BYTES).arrayBuffer();
    hash.update(new Uint8Array(chunk));
    onProgress(Math.min(offset + CHUNK_BYTES, file.size), file.size);
  }
  return toHex(hash.digest());
}
