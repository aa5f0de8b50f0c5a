-- models: the metrics of every model version in the registry, one row per figure, appended by
-- spark_jobs/train.py when it commits a version (the registry, <lake_root>/models/<name>/v<N>/,
-- holds the models and their manifests; this table makes their metrics queryable with SQL).
-- Applied by `tradelake hive apply` (and by train.py before it writes), idempotently.
-- ${hivevar:...} values come from the profile (conf/*.yaml); with beeline pass them yourself:
--   beeline -u "jdbc:hive2://127.0.0.1:10010/default;auth=noSasl" --hivevar lake_root=hdfs://... -f hive/ddl/60_models.hql
-- Columns follow spark_jobs/train.py METRIC_COLUMNS (tests/unit/spark_jobs/test_train_labels_and_folds.py
-- keeps them in step).
-- It lives in the trading database (the intelligence layer's outputs, beside signals).

CREATE EXTERNAL TABLE IF NOT EXISTS ${hivevar:trading_db}.model_metrics (
  `version` INT COMMENT 'model version: the registry folder v<version>',
  `run_id` STRING COMMENT 'training run that produced it (one run trains several models)',
  `kind` STRING COMMENT '\'forecast\', \'alpha\', \'risk\' or \'portfolio\'',
  `interval` STRING COMMENT 'bar length trained on: 1m, 5m, 1h or 1d',
  `train_from` DATE COMMENT 'first UTC date of the training window',
  `train_to` DATE COMMENT 'last UTC date of the training window',
  `scope` STRING COMMENT '\'fold\' (walk-forward test block), \'overall\' (all test blocks), \'in_sample\', \'symbol\', \'portfolio\' or \'weight\'',
  `fold` INT COMMENT 'walk-forward fold, 1-based; null unless scope is fold',
  `subject` STRING COMMENT 'symbol or portfolio the figure is about; null for a whole model',
  `metric` STRING COMMENT 'e.g. rmse, r2, ic, accuracy, auc, hist_var_95, min_variance',
  `value` DOUBLE COMMENT 'the figure; null when undefined (e.g. AUC of a one-class block)',
  `created_at` BIGINT COMMENT 'when the version was committed, UTC ns since epoch'
)
COMMENT 'metrics of each model version (walk-forward folds and overall), from spark_jobs/train.py'
PARTITIONED BY (
  `model` STRING COMMENT 'model name: the registry folder, e.g. alpha_1m'
)
STORED AS PARQUET
LOCATION '${hivevar:lake_root}/${hivevar:trading_db}/model_metrics';
