#!/usr/bin/env bash
# `make demo`: the whole Fog marketplace on one machine, with the real
# programs: anvil (a local Ethereum chain), the contracts deployed by
# `fog deploy`, `fog-hub serve` on SQLite, two `fog-miner run` agents on the
# local Docker engine, and the `fog` CLI for the buyer, the hub's operator and
# two DAO members.
#
# Act 1: a buyer runs a job on two miners (k = 2): its output is verified
#        against the receipts on chain and the tokens move. Then carol runs a
#        batched job: she funded an account once, signs an authorisation,
#        sends no transaction; the hub settles it in an epoch. carol also runs
#        a website as a service, reached through the hub and paid per period.
# Act 2: the hub cheats (it serves the buyer a forged output); the buyer
#        catches it, and the DAO votes the hub's deposit into the treasury.
#
# Everything lives under $FOG_DEMO_DIR (default .fog/demo), wiped at the start,
# so the demo can run again and again; every process is stopped on exit.
# anvil keeps its state in $FOG_DEMO_DIR/chain-state.json when it stops, and
# the demo writes $FOG_DEMO_DIR/summary.json: the end-to-end test reloads
# that chain and checks it against the summary.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
demo="${FOG_DEMO_DIR:-$root/.fog/demo}"
bin="${FOG_BIN_DIR:-$root/target/debug}"
anvil="$root/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
password="fog demo password"
# anvil's first development account (public, well-known): it deploys and holds the supply.
deployer_key="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

bold=$'\e[1m'
dim=$'\e[2m'
reset=$'\e[0m'
if [ ! -t 1 ]; then bold='' dim='' reset=''; fi
step=0
act() { printf '\n%s==== %s ====%s\n' "$bold" "$*" "$reset"; }
say() {
  step=$((step + 1))
  printf '\n%s[%d] %s%s\n' "$bold" "$step" "$*" "$reset"
}
explain() { printf '%s    %s%s\n' "$dim" "$*" "$reset"; }
die() {
  printf 'demo: %s\n' "$*" >&2
  exit 1
}

# ---- set-up -----------------------------------------------------------------
[ -x "$anvil" ] || die "anvil is missing: run 'make setup' (make demo does)"
if [ -z "${FOG_BIN_DIR:-}" ]; then
  if [ -x "$bin/fog" ] && [ -x "$bin/fog-hub" ] && [ -x "$bin/fog-miner" ]; then
    printf '[demo] bringing fog, fog-hub and fog-miner up to date (cargo build --bins)\n'
  else
    # Measured on this project's CI machine kind (2 shared cores): about 8 minutes.
    printf '[demo] building fog, fog-hub and fog-miner for the first time (cargo build --bins):\n'
    printf '[demo] about 8 minutes on 2 cores, seconds afterwards; cargo shows its progress below\n'
  fi
  built_from=$SECONDS
  (cd "$root" && cargo build --locked --bins)
  printf '[demo] built in %d s\n' "$((SECONDS - built_from))"
fi
for b in fog fog-hub fog-miner; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing"
done

pids=()
stop_all() {
  local i pid
  # Last started first: miners (they remove their containers), the hub, then
  # the chain. SIGTERM lets each shut down cleanly, and anvil write its state.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid="${pids[$i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

rm -rf "$demo"
mkdir -p "$demo/keys"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tokens() { python3 -c 'import sys; v=int(sys.argv[1]); print(f"{v // 10**18}.{v % 10**18:018d}".rstrip("0").rstrip("."))' "$1"; }
json() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[int(k)] if isinstance(d, list) else d[k]
print(d)' "$1"; }

chain_port="$(free_port)"
hub_port="$(free_port)"
rpc="http://127.0.0.1:$chain_port"
hub_url="http://127.0.0.1:$hub_port"
export FOG_RPC_URL="$rpc" FOG_DEPLOYMENT="$demo/deployment.json" FOG_KEY_PASSWORD="$password"
export FOG_HUB_URL="$hub_url"
# The demo's chain is thrown away at the end: so is the buyer's job journal.
export FOG_JOBS_DIR="$demo/jobs"
unset FOG_KEYSTORE RUST_BACKTRACE RUST_LIB_BACKTRACE

# `as ROLE fog …`: run the CLI with ROLE's keystore.
as() {
  local role="$1"
  shift
  FOG_KEYSTORE="$demo/keys/$role.json" "$bin/fog" "$@"
}
# A balance in base units (exact: the JSON carries them as hex).
units() { "$bin/fog" token balance "$1" --keystore "$demo/keys/buyer.json" --json | json balance | python3 -c 'import sys; print(int(sys.stdin.read(), 0))'; }

wait_until() {
  local what="$1" tries="$2"
  shift 2
  for _ in $(seq 1 "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what did not happen in time"
}

act "Act 1: a job, paid for through the escrow"

say "Start a local Ethereum chain (anvil) on $rpc"
"$anvil" --port "$chain_port" --state "$demo/chain-state.json" --silent >"$demo/anvil.log" 2>&1 &
pids+=($!)
wait_until "anvil answering" 100 curl -sf -X POST -H 'content-type: application/json' \
  --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$rpc"

say "Deploy Fog's contracts: token, registry, escrow, DAO governor, timelock, treasury"
FOG_DEPLOYER_KEY="$deployer_key" "$bin/fog" deploy --rpc-url "$rpc" --out "$FOG_DEPLOYMENT" 2>&1 | sed 's/^/    /'
explain "Devnet settings: a vote opens 60 s after a proposal, lasts 300 s, then waits 120 s in the timelock."

say "Create keys for everyone (encrypted keystores) and fund them from the devnet faucet"
for role in operator hub-signer buyer carol miner-a miner-b alice bob; do
  address="$(as "$role" key new)"
  printf '    %-10s %s\n' "$role" "$address"
  declare "addr_${role//-/_}=$address"
done
as operator devnet faucet --amount 20000 >/dev/null
as buyer devnet faucet --amount 100 >/dev/null
as carol devnet faucet --amount 20 >/dev/null
as hub-signer devnet faucet --amount 0 >/dev/null   # gas money: the hub pays settlement gas
as alice devnet faucet --amount 50000000 >/dev/null
as bob devnet faucet --amount 5000000 >/dev/null
explain "operator 20,000 FOG; buyer 100 FOG; DAO members alice 50,000,000 and bob 5,000,000 FOG (supply 1,000,000,000)."

say "The operator registers a hub: 10,000 FOG deposit, frozen; 5% commission"
hub="$(as operator hub register --deposit 10000 --fee 500 --endpoint "$hub_url" \
  --signer "$addr_hub_signer" --json | json hub)"
explain "hub address (its HubWallet): $hub"
as operator hub status "$hub" | sed 's/^/    /'

say "Start the hub service (fog-hub serve, SQLite) on $hub_url"
mkdir -p "$demo/hub"
cat >"$demo/hub/hub.toml" <<EOF
listen = "127.0.0.1:$hub_port"
database_url = "sqlite://$demo/hub/hub.db"
blob_dir = "$demo/hub/blobs"
deployment = "$FOG_DEPLOYMENT"
rpc_url = "$rpc"
hub = "$hub"
keystore = "$demo/keys/hub-signer.json"
log_format = "human"

[miners]
heartbeat_interval_ms = 1000
timeout_ms = 5000
EOF
env -u FOG_HUB_URL FOG_HUB_KEY_PASSWORD="$password" "$bin/fog-hub" serve --config "$demo/hub/hub.toml" >"$demo/hub/hub.log" 2>&1 &
pids+=($!)
wait_until "the hub answering" 150 curl -sf "$hub_url/healthz"

say "Start two miners (fog-miner run), each offering one core of this machine's Docker engine"
image="$(docker image inspect --format '{{.Id}}' fog-test/busybox:latest)"
for m in miner-a miner-b; do
  mkdir -p "$demo/$m"
  cat >"$demo/$m/miner.toml" <<EOF
keystore = "$demo/keys/$m.json"
hub_url = "$hub_url"
work_dir = "$demo/$m/work"

[offer]
cpu_millicores = 1000
memory_bytes = 1073741824
disk_bytes = 2147483648
region = "local"

[price]
per_core_hour = "0.5"

[chain]
deployment = "$FOG_DEPLOYMENT"
rpc_url = "$rpc"
hub = "$hub"
EOF
  FOG_MINER_KEY_PASSWORD="$password" FOG_LOG=info "$bin/fog-miner" run --config "$demo/$m/miner.toml" \
    >"$demo/$m/miner.log" 2>&1 &
  pids+=($!)
done
miners_connected() { curl -sf "$hub_url/metrics" | grep -q '^fog_hub_miners_connected 2$'; }
wait_until "both miners connecting" 150 miners_connected
explain "Both miners logged in to the hub by signing its challenge; sandbox: no network, read-only root, all capabilities dropped."

say "Balances before the job"
declare -A before
for who in buyer miner_a miner_b; do
  var="addr_$who"
  before[$who]="$(units "${!var}")"
done
before[hub]="$(units "$hub")"
printf '    buyer %s FOG, miner-a %s, miner-b %s, hub wallet %s (its deposit)\n' \
  "$(tokens "${before[buyer]}")" "$(tokens "${before[miner_a]}")" "$(tokens "${before[miner_b]}")" "$(tokens "${before[hub]}")"

say "The buyer runs a job on 2 miners that must agree: sum and sort the numbers 1..100"
seq 100 | shuf >"$demo/numbers.txt"
explain "input: numbers.txt (1..100 shuffled); the container writes sorted.txt and sum.txt"
explain "fog job run: quote → escrow opened with a permit (one transaction) → input uploaded → signed spec submitted → logs → settlement → verified download"
as buyer job run --image "$image" --cpus 0.5 --memory 64M --disk 16M \
  --input "$demo/numbers.txt" --out "$demo/result" --max-price 1 --replicas 2 --wait --json \
  -- sh -c 'sort -n /fog/in/numbers.txt > /fog/out/sorted.txt; awk "{ s += \$1 } END { print s }" /fog/in/numbers.txt > /fog/out/sum.txt; echo summed $(wc -l < /fog/in/numbers.txt) numbers' \
  >"$demo/run.json"
job="$(json jobId <"$demo/run.json")"
output_hash="$(json result.outputHash <"$demo/run.json")"
printf '    job %s\n' "$job"
printf '    sum.txt says %s (100 × 101 / 2 = 5050); sorted.txt runs %s … %s\n' \
  "$(cat "$demo/result/sum.txt")" "$(head -1 "$demo/result/sorted.txt")" "$(tail -1 "$demo/result/sorted.txt")"
[ "$(cat "$demo/result/sum.txt")" = 5050 ] || die "the job's sum is wrong"

say "Anyone can check the output against the receipts on chain"
as buyer job verify "$job" | sed 's/^/    /'
explain "Each miner signed a receipt (image run, output sha256, exit code, CPU time, charge); the escrow checked both, paid the miners and kept the receipts in its events."

say "Who was paid what (from the settlement's events)"
python3 - "$demo/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = lambda v: f"{int(v, 0) / 10**18:.6f}".rstrip("0").rstrip(".")
print(f"    locked by the buyer: {t(r['locked'])} FOG")
for p in r["result"]["miners"]:
    print(f"    miner {p['miner']}: {t(p['amount'])} FOG")
print(f"    hub commission: {t(r['result']['hubCommission'])} FOG; refunded to the buyer: {t(r['result']['refund'])} FOG")
PY

say "Balances after the job"
for who in buyer miner_a miner_b; do
  var="addr_$who"
  after="$(units "${!var}")"
  printf '    %-8s %s → %s FOG\n' "${who/_/-}" "$(tokens "${before[$who]}")" "$(tokens "$after")"
done
printf '    %-8s %s → %s FOG (deposit + commission)\n' hub "$(tokens "${before[hub]}")" \
  "$(tokens "$(units "$hub")")"

say "Batched settlement: the operator puts up the hub's bond in the batch contract (1,000 FOG)"
as operator account deposit 1000 --to "$hub" | sed 's/^/    /'
explain "Every epoch the hub commits must be covered by its bond: a hub that cannot back a debit pays it back from there."

say "carol funds her batch account once (one transaction, with a permit), then runs a job with none of its own"
as carol account deposit 10 | sed 's/^/    /'
carol_nonce() { curl -sf -X POST -H 'content-type: application/json' \
  --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getTransactionCount\",\"params\":[\"$addr_carol\",\"latest\"]}" "$rpc" | json result; }
nonce_before="$(carol_nonce)"
as carol job run --settlement batch --image "$image" --cpus 0.5 --memory 64M --disk 16M \
  --out "$demo/batched" --max-price 1 --wait --json -- sh -c 'echo paid in an epoch > /fog/out/note.txt' \
  >"$demo/batched.json"
[ "$(json settlement <"$demo/batched.json")" = batch ] || die "the job was not batched"
[ "$(carol_nonce)" = "$nonce_before" ] || die "carol sent a transaction for the batched job"
printf '    job %s: %s\n' "$(json jobId <"$demo/batched.json")" "$(cat "$demo/batched/note.txt")"
explain "No transaction of carol's: she signed an authorisation; the hub committed the job in an epoch (a Merkle root and each account's net change), and her output was verified against that epoch on chain."
as carol account balance | sed 's/^/    /'

say "carol runs a website as a service: reached through the hub, paid per healthy 10 s from her account"
site_image="$(docker image inspect --format '{{.Id}}' fog-test/httpd:latest)"
cat >"$demo/site.toml" <<SITE
image = "$site_image"
port = 8080
cpus = 0.25
memory = "64M"
disk = "16M"
period_secs = 10
price = "0.01"
max_spend = "1"

[health]
path = "/"
interval_secs = 2
SITE
site_url="$(as carol service up "$demo/site.toml" --wait 120)"
site="$(basename "$site_url")"
printf '    %s answers: %s\n' "$site_url" "$(curl -sf "$site_url")"
explain "The container runs on a miner behind NAT with no network interface but its loopback; the hub reaches its port through a tunnel the miner opens back to it, and checks its health every 2 s."
sleep 12
as carol service status "$site" | sed 's/^/    /'
as carol service stop "$site" | sed 's/^/    /'
explain "carol pays for the healthy periods served (0.01 FOG each, within one period); the segment settles in the hub's next epoch."

act "Act 2: a cheating hub loses its deposit by a DAO vote"

say "The hub cheats: it swaps the stored output for a forged one (sum 5051)"
forged="$demo/forged"
mkdir -p "$forged"
echo 5051 >"$forged/sum.txt"
cp "$demo/result/sorted.txt" "$forged/sorted.txt"
tar -C "$forged" -cf "$demo/hub/blobs/${output_hash#0x}" sum.txt sorted.txt
served="0x$(sha256sum "$demo/hub/blobs/${output_hash#0x}" | cut -d' ' -f1)"

say "The buyer downloads the output again, and Fog refuses it"
# (In the demo's directory: a mismatching archive is kept in ./fog-evidence.)
if (cd "$demo" && as buyer job get "$job" --out "$demo/result-again") 2>"$demo/get.err"; then
  die "the forged output was accepted"
fi
sed 's/^/    /' "$demo/get.err"
explain "The receipts on chain name output $output_hash; the hub served $served."
evidence="$(ls "$demo"/fog-evidence/*.tar 2>/dev/null | head -1)"
[ -n "$evidence" ] || die "the forged archive was not kept as evidence"
explain "The forged archive is kept as evidence: ${evidence#"$demo/"}"

say "Anyone can check that archive with the chain alone (no key, no hub)"
if env -u FOG_HUB_URL -u FOG_KEY_PASSWORD "$bin/fog" job verify "$job" --archive "$evidence" 2>"$demo/verify.err"; then
  die "the forged archive verified"
fi
sed 's/^/    /' "$demo/verify.err"

say "alice and bob delegate their votes to themselves (votes follow delegation)"
as alice dao delegate | sed 's/^/    /'
as bob dao delegate | sed 's/^/    /'
# Proposing takes 1,000 FOG of votes as of the second before (the governor's
# threshold): the devnet's clock moves on a second.
as alice devnet advance 1 >/dev/null

say "alice proposes to blacklist the hub, with the job as evidence"
proposal="$(as alice dao propose-blacklist "$hub" --evidence "$job" \
  --note "The hub served job $job's buyer an output archive with sha256 $served." --json | json id)"
as alice dao status "$proposal" | sed 's/^/    /'

say "Voting opens after the voting delay: the devnet's clock moves 61 s"
as alice devnet advance 61 | sed 's/^/    /'

say "alice votes for, bob against"
as alice dao vote "$proposal" --support for --reason "the receipts on chain contradict what the hub served" | sed 's/^/    /'
as bob dao vote "$proposal" --support against | sed 's/^/    /'

say "The vote closes (301 s later), passes, and is queued in the timelock"
as alice devnet advance 301 | sed 's/^/    /'
as alice dao queue "$proposal" | sed 's/^/    /'

say "After the timelock delay (121 s), anyone executes it"
as alice devnet advance 121 | sed 's/^/    /'
as bob dao execute "$proposal" | sed 's/^/    /'

say "The hub is blacklisted; its deposit is frozen in the DAO treasury"
as operator hub status "$hub" | sed 's/^/    /'
as alice dao treasury | sed 's/^/    /'
explain "The lot stays frozen for the freeze period (1 day on the devnet): if the token falls meanwhile,"
explain "expropriating an honest hub would not pay the DAO. Only another vote can spend it after release."
explain "The hub's earned commission stays the operator's: only the deposit was the stake."

python3 - "$demo" "$job" "$hub" "$proposal" "$addr_buyer" "$addr_miner_a" "$addr_miner_b" <<'PY'
import json, sys
demo, job, hub, proposal, buyer, a, b = sys.argv[1:]
run = json.load(open(f"{demo}/run.json"))
json.dump({"job": job, "hub": hub, "proposal": proposal, "buyer": buyer,
           "miners": [a, b], "run": run}, open(f"{demo}/summary.json", "w"), indent=2)
PY

act "Done"
printf 'Everything is in %s (logs: hub/hub.log, miner-*/miner.log, anvil.log).\n' "$demo"
printf 'Stopping the miners, the hub and the chain.\n'
