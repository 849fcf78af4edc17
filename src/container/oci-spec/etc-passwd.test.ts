import { describe, expect, it } from 'vitest';
import { parseGroup, parsePasswd } from './etc-passwd.js';

describe('etc-passwd parsers', () => {
  it('parses passwd entries and skips comments and malformed lines', () => {
    const text = '# users\nroot:x:0:0:root:/root:/bin/sh\n\nbad\nneg:x:-1:0::/:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nshort:x:5:5\n';
    expect(parsePasswd(text)).toEqual([
      { name: 'root', uid: 0, gid: 0, home: '/root' },
      { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' },
      { name: 'short', uid: 5, gid: 5, home: '' },
    ]);
  });
  it('parses group members', () => {
    expect(parseGroup('wheel:x:10:root, app\nempty:x:20:\nnomembers:x:30\n:x:40:a\nbad:x:y:a\n')).toEqual([
      { name: 'wheel', gid: 10, members: ['root', 'app'] },
      { name: 'empty', gid: 20, members: [] },
      { name: 'nomembers', gid: 30, members: [] },
    ]);
  });
});
