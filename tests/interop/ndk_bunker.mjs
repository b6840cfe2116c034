// A NIP-46 remote signer for tests/test_nip46_interop.py: NDK's NDKNip46Backend on one relay.
// argv[2]: the directory holding node_modules/@nostr-dev-kit/ndk (the test installs it there).
// stdin: one JSON object {relay, secret_key, connect_secret, deny_methods: [..], deny_kinds: [..],
// auth_url?: string, auth_methods?: [..], relays?: [..], sign_in?: bool}: the methods in auth_methods first
// answer with an auth challenge (result "auth_url", the URL in error), then with their real
// result; ``relays`` (default [relay]) are where the backend listens and answers, and what it
// names in answer to switch_relays, while the bunker URI it prints names ``relay`` only;
// ``sign_in`` answers relays' NIP-42 challenges with the user's key (NDK's signIn policy).
// stdout: one line "ready <bunker URI>" once the backend listens; then one line per handled
// request, "request <method> <allowed|denied>", so the test can see what the signer decided.
// Runs until killed (the test stops it by pid, or kills it to play a signer gone offline).
import { createRequire } from "node:module";
import path from "node:path";
import { readFileSync } from "node:fs";

const require = createRequire(path.join(path.resolve(process.argv[2]), "package.json"));
globalThis.WebSocket ??= require("ws").WebSocket;
const { default: NDK, NDKNip46Backend, NDKPrivateKeySigner, NDKRelayAuthPolicies } = require("@nostr-dev-kit/ndk");

const config = JSON.parse(readFileSync(0, "utf8"));
const denyMethods = new Set(config.deny_methods ?? []);
const denyKinds = new Set(config.deny_kinds ?? []);
const approved = new Set();
let secretSpent = false;
let ready = false;

// No outbox model: NDK would otherwise dial purplepag.es and nos.lol; tests stay on loopback.
const relays = config.relays ?? [config.relay];
const ndk = new NDK({ explicitRelayUrls: relays, enableOutboxModel: false });
const signer = new NDKPrivateKeySigner(config.secret_key);
if (config.sign_in) ndk.relayAuthDefaultPolicy = NDKRelayAuthPolicies.signIn({ ndk, signer });
await ndk.connect(5000);
const user = await signer.user();

const permit = async ({ pubkey, method, params }) => {
  let allowed = approved.has(pubkey) && !denyMethods.has(method);
  if (allowed && method === "sign_event" && denyKinds.has(params.kind)) allowed = false;
  process.stdout.write(`request ${method}${method === "sign_event" ? ":" + params.kind : ""} ${allowed ? "allowed" : "denied"}\n`);
  return allowed;
};

const backend = new NDKNip46Backend(ndk, signer, permit, relays);
// The connection secret is single-use: the first client to present it is approved.
backend.applyToken = async (pubkey, token) => {
  if (secretSpent || token !== config.connect_secret) throw new Error("invalid secret");
  secretSpent = true;
  approved.add(pubkey);
};
backend.localUser = user;

for (const method of config.auth_methods ?? []) {
  const inner = backend.handlers[method];
  backend.setStrategy(method, {
    async handle(b, id, remotePubkey, params) {
      await b.rpc.sendResponse(id, remotePubkey, "auth_url", undefined, config.auth_url);
      process.stdout.write(`challenge ${method}\n`);
      return inner.handle(b, id, remotePubkey, params);
    },
  });
}

// backend.start() without its readiness signal: the same subscription, plus an EOSE callback
// so the test starts only once the REQ is live (kind 24133 is ephemeral, never replayed).
ndk.subscribe(
  { kinds: [24133], "#p": [user.pubkey] },
  {
    closeOnEose: false,
    onEvent: (event) => backend.handleIncomingEvent(event),
    onEose: () => {
      if (ready) return;
      ready = true;
      const query = `relay=${encodeURIComponent(config.relay)}&secret=${encodeURIComponent(config.connect_secret)}`;
      process.stdout.write(`ready bunker://${user.pubkey}?${query}\n`);
    },
  },
);
