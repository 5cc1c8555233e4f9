ALTER TABLE `job_runs` ADD `as_of` text;--> statement-breakpoint
-- A finished run's asOf is the one its best-customers rollup was computed as of (every run stores one).
UPDATE `job_runs` SET `as_of` = (SELECT `as_of` FROM `insight_rollups` r WHERE r.`run_id` = `job_runs`.`id`) WHERE `as_of` IS NULL;--> statement-breakpoint
-- Runs that errored were never marked and stay `running`: all but the newest are marked errored, so the
-- one-running-run index below can be built. The newest is released by the next start if its Workflow
-- instance is no longer running (worker/jobs/nightly.start.ts).
UPDATE `job_runs` SET `status` = 'errored' WHERE `status` = 'running' AND `id` NOT IN (SELECT `id` FROM `job_runs` j WHERE j.`status` = 'running' AND j.`kind` = `job_runs`.`kind` ORDER BY j.`started_at` DESC, j.`id` DESC LIMIT 1);--> statement-breakpoint
CREATE UNIQUE INDEX `job_runs_one_running_idx` ON `job_runs` (`kind`) WHERE "job_runs"."status" = 'running';--> statement-breakpoint
CREATE INDEX `job_runs_started_idx` ON `job_runs` (`kind`,`started_at`);
