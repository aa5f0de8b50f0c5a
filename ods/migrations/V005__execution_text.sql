-- Execution reports carry the order a cancel/replace acted on (FIX OrigClOrdID, tag 41) and the
-- venue's or risk's free text (FIX Text, tag 58): every reject says why, in the store too.
ALTER TABLE executions ADD COLUMN orig_cl_ord_id TEXT;
ALTER TABLE executions ADD COLUMN text TEXT;
