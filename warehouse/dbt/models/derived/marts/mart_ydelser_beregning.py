"""mart_ydelser_beregning: the full computation on the first build, then cells moved by delta (pipelines.warehouse.stats.maintain_ydelser)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="append")
    dbt.ref("fct_ydelsesforloeb")
    dbt.ref("dim_kommune")
    dbt.ref("dim_kontaktgruppe")
    dbt.ref("int_affected_person_maaneder")
    dbt.ref("int_state_changed_keys")
    dbt.ref("int_state_changed_old")
    dbt.source("meta", "load")
    dbt.source("meta", "current_load")
    from pipelines.warehouse.dbt_runner import ydelser_python_model

    return ydelser_python_model(dbt, session)
