"""The SMTP relay: staff mail passes the gate inside the SMTP transaction, then a durable queue.

`server` speaks SMTP (aiosmtpd) and decides who may send as whom, `auth` checks
staff passwords, `headers` reads From:/Subject:, `intake` stores each message
and asks the gate, `gatepool` runs the gate in worker processes under a time
limit, `writer` commits every write in groups, `outbound` delivers from the
queue to the upstream MTA, `notices` writes to senders, `status` names every
reply, `metrics` serves /healthz and /metrics, `relay` wires it all together;
`sink` and `demo` are the demo's upstream and runner.
"""
