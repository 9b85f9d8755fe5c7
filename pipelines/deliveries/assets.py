"""Dagster assets and schedules for the deliveries: one asset per recipient, one schedule per delivery kind.

Thin wrappers over :func:`pipelines.deliveries.deliver`.  The assets are not
partitioned: a delivery is identified by recipient, period and the warehouse
load it is cut from, all recorded in its manifest and the audit log.  Run
config ``kind`` (full|increment), ``period`` (empty: see
:func:`pipelines.deliveries.default_period`), ``load_id`` (empty: the latest
load) and ``demo_keys`` (create missing demo key pairs).  Schedules start
STOPPED; each recipient's cron comes from recipients.yaml.
"""


import json

import dagster as dg

from pipelines.assets.ingestion import TZ, DsdwResource
from pipelines.assets.warehouse import PUBLISHED
from pipelines.deliveries.recipients import Recipient, load_recipients


class LeveringConfig(dg.Config):
    kind: str = "full"
    period: str = ""
    load_id: str = ""
    demo_keys: bool = False


def asset_key(rid: str) -> dg.AssetKey:
    return dg.AssetKey(["deliveries", rid])


def op_name(rid: str) -> str:
    return f"deliveries__{rid}"


def _make_asset(rec: Recipient) -> dg.AssetsDefinition:
    desc = (f"{rec.navn} ({rec.retsgrundlag}). {rec.population} Leveringer: {', '.join(rec.leveringer)}; "
            f"periode: {rec.periode}; formater: {', '.join(rec.formater)}"
            + ("; krypteret til modtagerens nøgle" if rec.krypteret else ""))

    @dg.asset(key=asset_key(rec.id), deps=[PUBLISHED], group_name="deliveries", description=desc,
              kinds={"parquet"} | ({"csv"} if "csv" in rec.formater else set()),
              metadata={"retsgrundlag": rec.retsgrundlag, "periode": rec.periode,
                        "tidsplan": dg.MetadataValue.json(rec.tidsplan)})
    def _asset(context: dg.AssetExecutionContext, config: LeveringConfig, dsdw: DsdwResource) -> dg.MaterializeResult:
        from pipelines.deliveries import default_period, deliver

        period = config.period or default_period(dsdw.root, rec.id, config.kind)
        path = deliver(dsdw.root, rec.id, period, kind=config.kind, load_id=config.load_id or None,
                       create_missing_keys=config.demo_keys)
        m = json.loads(path.read_text(encoding="utf-8"))
        context.log.info(f"{rec.id} {period} {config.kind}: {m['raekker']} rows from load {m['snit']['load_id']}")
        return dg.MaterializeResult(metadata={
            "manifest": dg.MetadataValue.path(str(path)), "retsgrundlag": rec.retsgrundlag,
            "periode": period, "levering": config.kind, "raekker": m["raekker"],
            "load_id": m["snit"]["load_id"], "indlaest_dato": m["snit"]["indlaest_dato"],
            "filer": dg.MetadataValue.json({f["navn"]: f["raekker"] for f in m["filer"]}),
        })

    return _asset


DELIVERY_ASSETS: list[dg.AssetsDefinition] = [_make_asset(r) for r in load_recipients().values()]


def _schedules() -> tuple[list, list[dg.ScheduleDefinition]]:
    jobs, schedules = [], []
    for rec in load_recipients().values():
        job = dg.define_asset_job(f"levering_{rec.id}", selection=dg.AssetSelection.assets(asset_key(rec.id)),
                                  description=f"Levering til {rec.navn} ({rec.retsgrundlag}).")
        jobs.append(job)
        for kind, cron in rec.tidsplan.items():
            schedules.append(dg.ScheduleDefinition(
                name=f"levering_{rec.id}_{kind}", job=job, cron_schedule=cron, execution_timezone=TZ,
                run_config={"ops": {op_name(rec.id): {"config": {"kind": kind}}}},
                default_status=dg.DefaultScheduleStatus.STOPPED,
                description=f"{kind} til {rec.navn} ({rec.retsgrundlag}), cron {cron}."))
    return jobs, schedules


DELIVERY_JOBS, DELIVERY_SCHEDULES = _schedules()
#: every recipient in one run (config per recipient's op): the demo's deliveries, two runs instead of one per
#: recipient and kind (a run's own cost - creating it, planning and logging its assets - exceeds a small cut's)
LEVERINGER_JOB = dg.define_asset_job("leveringer", selection=dg.AssetSelection.groups("deliveries"),
                                     description="Leveringer til alle modtagere i én kørsel (config pr. modtager).")
DELIVERY_JOBS.append(LEVERINGER_JOB)
