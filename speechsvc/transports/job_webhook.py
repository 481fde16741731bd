"""The completion callback of a REST job: when a job's last item ends, the replica that ended it POSTs
``{"type": "job.completed", "job": <the job as GET /v1/jobs/{id} shows it>}`` to the job's ``webhook_url``,
signed in the Standard Webhooks scheme (:mod:`speechsvc.security.signing`) with the secret of the job's tenant's
webhook (``webhooks`` entry for that tenant), else ``webhook_secret``; unsigned when neither is set. One
message id per job (``msg_job_<id>``): a receiver deduplicates retries by it. The URL is checked again before
each delivery (DNS may have changed since the job was submitted)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx

from speechsvc import __version__
from speechsvc.batch.jobs import Job
from speechsvc.config import Settings
from speechsvc.errors import Forbidden
from speechsvc.security.network import check_webhook_url, safe_url
from speechsvc.security.signing import sign
from speechsvc.transports.rest_jobs import job_view

log = logging.getLogger(__name__)

USER_AGENT = f"speechsvc/{__version__}"


class JobWebhook:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def secret(self, tenant: str) -> str | None:
        for target in self.settings.webhooks:
            if target.tenant == tenant and target.secret:
                return target.secret
        return self.settings.webhook_secret

    async def send(self, job: Job) -> None:
        """POST the completion of ``job`` with retries (backing off); logs, never raises, when it cannot."""
        if not job.webhook_url:
            return
        url, settings = job.webhook_url, self.settings
        body = json.dumps({"type": "job.completed", "job": job_view(job)}, ensure_ascii=False).encode("utf-8")
        secret = self.secret(job.tenant)
        delay = 0.2
        async with httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False) as client:
            for attempt in range(1, settings.webhook_retries + 1):
                headers = {"content-type": "application/json", "user-agent": USER_AGENT}
                if secret:
                    headers.update(sign(secret, f"msg_job_{job.id}", int(time.time()), body))
                try:
                    await asyncio.to_thread(check_webhook_url, url, settings.webhook_allow_link_local)
                    response = await client.post(url, content=body, headers=headers)
                    if response.status_code < 300:
                        log.info("job %s: completion sent to %s", job.id, safe_url(url))
                        return
                    if response.status_code < 500:
                        log.warning("job %s: %s refused the completion with HTTP %d; not retried", job.id,
                                    safe_url(url), response.status_code)
                        return
                    log.warning("job %s: %s answered %d (attempt %d)", job.id, safe_url(url), response.status_code,
                                attempt)
                except Forbidden as e:
                    log.error("job %s: %s; completion not sent", job.id, e)
                    return
                except httpx.HTTPError as e:
                    log.warning("job %s: completion to %s failed: %s (attempt %d)", job.id, safe_url(url),
                                type(e).__name__, attempt)
                if attempt < settings.webhook_retries:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        log.error("job %s: gave up sending its completion to %s", job.id, safe_url(url))
