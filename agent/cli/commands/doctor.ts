/** `premortem doctor`: the host check, as text or JSON. */
import { formatDoctor, runDoctor } from '../../doctor';
import { get, type ParsedCommand } from '../args';
import { writeOut } from '../output';
import { EXIT } from '../spec';

export async function doctor(p: ParsedCommand): Promise<number> {
  const r = await runDoctor({ disablePrograms: get.list<string>(p, 'disable') });
  await writeOut((get.flag(p, 'json') ? JSON.stringify(r, null, 2) : formatDoctor(r)) + '\n');
  return r.canRun ? EXIT.ok : EXIT.failure;
}
