"""The stack on one machine, as AWS runs it: the emulator (moto) with `infra/template.yaml`
deployed into its CloudFormation the way the deploy rehearsal does it (the same transform and
shims), and each function's real bootstrap run as the deployed stack configures it.

What the emulator keeps (the table and its stream, the queues and their redrive, the bus and
its rule delivering to the delivery queue, KMS, every function's configuration and event source
mappings) it serves itself. What it does not run, this harness emulates, reading the deployed
configuration:
  - Lambda: each function's bootstrap behind a Runtime API served here, one process per
    concurrent invocation up to the function's concurrency, with the deployed environment (plus
    the emulator's endpoint), memory size and timeout;
  - the HTTP API: the deployed routes and integrations (payload format 2.0), the JWT authorizer
    (RS256, RS384 or RS512 only, as AWS's HTTP API authorizer; the token checked against the
    issuer's discovery document and keys, `iss`, `aud`, `exp`, `nbf`, `iat`; the keys cached for
    KEY_CACHE_SECONDS of the emulated clock, an unknown `kid` refused until they expire), API
    Gateway's own answers and its payload limit;
  - the function URL of the issuer's keys, on a port of its own;
  - the stream's event source mapping into the publisher (its filters, batch size, batching
    window, partial batch failures, bisect on error, retries and on-failure destination), and
    the delivery queue's into the deliverer (batch size, partial batch failures, maximum
    concurrency; the queue's visibility timeout and redrive are the emulator's);
  - TTL: items whose `ttl` has passed are deleted as DynamoDB's sweeper deletes them, with a
    REMOVE stream record marked as the service's.

Usage (through `tests/stack`, which installs the Python tools, builds the bootstraps and runs
this package with tests/ on the path):
  python -m harness up --port PORT --data-dir DIR --bin-dir BIN [--webhook-allow-loopback]
                       [--parameter-overrides K=V [K=V ...]] [--template PATH]
                       [--hostile [--shards N] [--duplicate-rate R] [--throttle-rate R]
                                  [--conflict-rate R] [--recycle-rate P] [--seed N]]
  python -m harness client create --data-dir DIR --account AID [--scopes "..."] --bin-dir BIN
  python -m harness clock --data-dir DIR --offset-seconds N
  python -m harness redeploy --data-dir DIR --parameter-overrides K=V [K=V ...]

`up` deploys with the template's defaults, but for the parameters `--parameter-overrides` names
(as `sam deploy --parameter-overrides` does), writes DIR/stack.json once every function has
answered, prints `stack listening on http://127.0.0.1:PORT`, logs each invocation (function,
request id, duration, status) and stops everything on SIGTERM or SIGINT. Each function's own log
is in DIR/logs/FUNCTION.log. `SHOPPING_CLOCK_OFFSET_SECONDS` moves the clock of the whole
emulated account (functions, authorizer and its key cache, TTL sweeper); `clock` moves it on a
running stack, restarting the functions as a configuration change would.

`up --hostile` makes the stack as hostile as AWS is allowed to be (hostile.py; FIDELITY.md,
"Hostile mode"), each fault at its rate:
  --shards N            the stream's records in N virtual shards keyed by item (pk, sk), each
                        batched, retried and bisected on its own: an item's records in order,
                        different items' reordered (default 4; 1 to 10)
  --duplicate-rate R    a stream record delivered again in a later invocation, a queue message
                        the deliverer processed received again, an event EventBridge sends to
                        an SQS target sent twice, each with probability R (default 0.10)
  --throttle-rate R     a function's DynamoDB call answered a throttle (ProvisionedThroughput-
                        ExceededException and ThrottlingException in turn), unapplied (0.03)
  --conflict-rate R     a function's TransactWriteItems cancelled for a TransactionConflict on
                        one item, unapplied (0.05)
  --recycle-rate P      an instance ended after an invocation instead of kept warm (0.10)
  --seed N              the faults' seed (default random, logged)
Every injection is a `hostile: KIND: ...` line in DIR/stack.log and counted in the control
server's GET /stats (`"hostile"`; `"instances"` counts the processes started per function);
DIR/stack.json's `"hostile"` holds the settings in force
(null without --hostile).

`redeploy` updates the running stack's CloudFormation stack with the template and its parameters,
those named changed and the others as they were (as `sam deploy` keeps samconfig's): the functions
whose configuration changed restart (as a new version would), the routes and authorizers are read
again (an authorizer whose issuer and audiences are unchanged keeps its key cache, as API
Gateway's does), DIR/stack.json is rewritten, and it prints `redeployed: K=V ...`. A change that
adds or removes a function or changes an event source mapping needs a new `up`.

Which module holds what: README.md in this folder.
"""
