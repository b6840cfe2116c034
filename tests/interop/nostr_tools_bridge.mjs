// Runs requests against nostr-tools for tests/test_interop.py.
// stdin: a JSON array of {"op": ..., ...}; stdout: a JSON array of results in the same order.
// argv[2]: the directory holding node_modules/nostr-tools (the test installs it there).
import { createRequire } from "node:module";
import path from "node:path";
import { readFileSync } from "node:fs";

const require = createRequire(path.join(path.resolve(process.argv[2]), "package.json"));
const pure = require("nostr-tools/pure");
const nip19 = require("nostr-tools/nip19");
const nip44 = require("nostr-tools/nip44");
const nip59 = require("nostr-tools/nip59");

const hexToBytes = (hex) => Uint8Array.from(Buffer.from(hex, "hex"));
const bytesToHex = (bytes) => Buffer.from(bytes).toString("hex");

const ops = {
  version: () =>
    JSON.parse(readFileSync(path.join(path.resolve(process.argv[2]), "node_modules/nostr-tools/package.json"), "utf8")).version,
  public_key: ({ secret }) => pure.getPublicKey(hexToBytes(secret)),
  sign: ({ template, secret }) => pure.finalizeEvent(template, hexToBytes(secret)),
  verify: ({ event }) => pure.verifyEvent({ ...event }),
  event_hash: ({ event }) => pure.getEventHash(event),
  nip44_encrypt: ({ secret, pubkey, plaintext }) =>
    nip44.v2.encrypt(plaintext, nip44.v2.utils.getConversationKey(hexToBytes(secret), pubkey)),
  nip44_decrypt: ({ secret, pubkey, payload }) =>
    nip44.v2.decrypt(payload, nip44.v2.utils.getConversationKey(hexToBytes(secret), pubkey)),
  conversation_key: ({ secret, pubkey }) => bytesToHex(nip44.v2.utils.getConversationKey(hexToBytes(secret), pubkey)),
  gift_wrap: ({ rumor, secret, recipient }) => nip59.wrapEvent(rumor, hexToBytes(secret), recipient),
  unwrap: ({ wrap, secret }) => nip59.unwrapEvent(wrap, hexToBytes(secret)),
  nip19_encode: ({ entity, value }) => {
    switch (entity) {
      case "npub": return nip19.npubEncode(value);
      case "nsec": return nip19.nsecEncode(hexToBytes(value));
      case "note": return nip19.noteEncode(value);
      case "nprofile": return nip19.nprofileEncode(value);
      case "nevent": return nip19.neventEncode(value);
      case "naddr": return nip19.naddrEncode(value);
      default: throw new Error(`unknown entity ${entity}`);
    }
  },
  nip19_decode: ({ text }) => {
    const { type, data } = nip19.decode(text);
    return { type, data: data instanceof Uint8Array ? bytesToHex(data) : data };
  },
};

const requests = JSON.parse(readFileSync(0, "utf8"));
const results = requests.map((request) => {
  try {
    return { ok: ops[request.op](request) };
  } catch (error) {
    return { error: String(error && error.message ? error.message : error) };
  }
});
process.stdout.write(JSON.stringify(results));
