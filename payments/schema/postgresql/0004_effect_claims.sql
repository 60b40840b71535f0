-- Several nodes: the node carrying out a pending effect. Another node takes the effect
-- over only once that node's lease has run out (storage/nodes.py).
ALTER TABLE effects ADD COLUMN claimed_by TEXT COLLATE "C";
