/**
 * An independent, brute-force model of the EIP-3076 complete strategy, written from the slashing conditions
 * themselves (pairwise comparisons over a plain list) rather than from the database's queries.
 */
export interface OBlock {
  slot: bigint;
  root?: string;
}
export interface OAtt {
  source: bigint;
  target: bigint;
  root?: string;
}

const sameKnown = (a?: string, b?: string) => a !== undefined && b !== undefined && a === b;

export function blocksSlashable(a: OBlock, b: OBlock): boolean {
  return a.slot === b.slot && !sameKnown(a.root, b.root);
}

export function attsSlashable(a: OAtt, b: OAtt): boolean {
  const doubleVote = a.target === b.target && !(a.source === b.source && sameKnown(a.root, b.root));
  const surrounds = (x: OAtt, y: OAtt) => x.source < y.source && y.target < x.target;
  return doubleVote || surrounds(a, b) || surrounds(b, a);
}

export class Oracle {
  blocks: OBlock[] = [];
  atts: OAtt[] = [];
  markSlot: bigint | null = null;
  markEpoch: bigint | null = null;

  /** true = allowed (and recorded unless an exact repeat). */
  block(b: OBlock): boolean {
    if (this.blocks.some((r) => r.slot === b.slot && sameKnown(r.root, b.root))) return true;
    if (this.blocks.some((r) => blocksSlashable(r, b))) return false;
    const minSlot = this.blocks.length ? this.blocks.reduce((m, r) => (r.slot < m ? r.slot : m), this.blocks[0]!.slot) : null;
    if (minSlot !== null && b.slot <= minSlot) return false;
    if (this.markSlot !== null && b.slot <= this.markSlot) return false;
    this.blocks.push(b);
    return true;
  }

  att(a: OAtt): boolean {
    if (a.source > a.target) return false;
    if (this.atts.some((r) => r.source === a.source && r.target === a.target && sameKnown(r.root, a.root))) return true;
    if (this.atts.some((r) => attsSlashable(r, a))) return false;
    const minSource = this.atts.length ? this.atts.reduce((m, r) => (r.source < m ? r.source : m), this.atts[0]!.source) : null;
    const minTarget = this.atts.length ? this.atts.reduce((m, r) => (r.target < m ? r.target : m), this.atts[0]!.target) : null;
    if (minSource !== null && a.source < minSource) return false;
    if (minTarget !== null && a.target <= minTarget) return false;
    if (this.markEpoch !== null && (a.source < this.markEpoch || a.target <= this.markEpoch)) return false;
    this.atts.push(a);
    return true;
  }

  raise(slot: bigint, epoch: bigint): void {
    if (this.markSlot === null || slot > this.markSlot) this.markSlot = slot;
    if (this.markEpoch === null || epoch > this.markEpoch) this.markEpoch = epoch;
  }
}
