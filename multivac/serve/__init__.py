"""`multivac serve`: GitHub's workflow_job and workflow_run webhooks in, records out.

- `app`: the ASGI application (Starlette on uvicorn) and the `Service` behind it;
- `signature`: the `X-Hub-Signature-256` check;
- `live`: the jobs queued and running now, per runner label;
- `worker`: reads failed jobs' logs in the background (its queue is in the store);
- `emitter`: the one thread that writes records to the output;
- `metrics`: `GET /metrics` in Prometheus text format.

Deliveries become the same records, in the same store, as a gather of the same jobs.
"""

from multivac.serve.app import Service
from multivac.serve.signature import sign

__all__ = ["Service", "sign"]
