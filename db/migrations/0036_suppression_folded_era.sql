ALTER TABLE `suppressions` ADD `folded_era` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Rows listed so far may hold keys of ids keyed NFKC-folded: the folded key of an id matches only these.
UPDATE `suppressions` SET `folded_era` = 1;
