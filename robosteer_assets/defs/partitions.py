"""The `task` dynamic partition: one key per task folder under the demos root."""

import dagster as dg

task_partitions = dg.DynamicPartitionsDefinition(name="task")
