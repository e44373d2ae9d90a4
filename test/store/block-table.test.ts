/**
 * pickDefragBlock() skips its scan of every block while nothing changed since a scan that found
 * no candidate: every change that can make a block a candidate must still be seen.
 */
import test from 'ava';
import { BlockState, BlockTable, BLOCK_TABLE_BYTES_PER_BLOCK } from '../../store/storage/block-table.js';

const BLOCK = 1024;
const LWM = BLOCK / 2;

function table(): BlockTable {
  const t = new BlockTable(BLOCK, 8, 'test');
  for (let b = 0; b < 8; b++) {
    t.setState(b, BlockState.USED);
    t.addLive(b, BLOCK);
  }
  return t;
}

test('live bytes going down under the low-water mark make a block a candidate after a fruitless scan', (t) => {
  const bt = table();
  t.is(bt.pickDefragBlock(LWM), -1);
  t.is(bt.pickDefragBlock(LWM), -1);
  bt.subLive(5, BLOCK - 16);
  t.is(bt.pickDefragBlock(LWM), 5);
});

test('a block becoming USED, a cleared count, another low-water mark and a load are each seen', (t) => {
  const bt = table();
  bt.setState(3, BlockState.OPEN);
  bt.subLive(3, BLOCK);
  t.is(bt.pickDefragBlock(LWM), -1, 'an open block is never a candidate');
  bt.setState(3, BlockState.USED);
  t.is(bt.pickDefragBlock(LWM), 3);

  const bt2 = table();
  t.is(bt2.pickDefragBlock(LWM), -1);
  bt2.clearLive(6);
  t.is(bt2.pickDefragBlock(LWM), 6);

  const bt3 = table();
  bt3.subLive(2, LWM);
  t.is(bt3.pickDefragBlock(LWM), -1, 'exactly at the mark is not under it');
  t.is(bt3.pickDefragBlock(LWM + 1), 2, 'a higher mark scans again');

  const src = table();
  src.subLive(7, BLOCK - 32);
  const bt4 = table();
  t.is(bt4.pickDefragBlock(LWM), -1);
  bt4.load(src.toBytes());
  t.is(src.toBytes().length, 8 * BLOCK_TABLE_BYTES_PER_BLOCK);
  t.is(bt4.pickDefragBlock(LWM), 7);
});
