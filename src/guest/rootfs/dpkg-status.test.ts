import { describe, expect, it } from 'vitest';
import { parseDpkgStatus } from './dpkg-status.js';

const STATUS = `Package: python3
Status: install ok installed
Priority: optional
Architecture: amd64
Source: python3-defaults (3.11.2-1)
Version: 3.11.2-1+b1
Depends: python3.11 (>= 3.11.2-1~)
Description: interactive high-level object-oriented language (default version)
 Python, the high-level, interactive object oriented language,
 Version: 9.9 (a continuation line that only looks like a field)

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: curl
Status: install ok installed
Architecture: amd64
Version: 7.88.1-10+deb12u8

Package: half
Status: install ok half-installed
Version: 2

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
`;

describe('parseDpkgStatus', () => {
  it('lists installed packages with version and architecture, sorted, skipping removed and half-installed ones', () => {
    expect(parseDpkgStatus(STATUS)).toEqual([
      { name: 'curl', version: '7.88.1-10+deb12u8', architecture: 'amd64' },
      { name: 'python3', version: '3.11.2-1+b1', architecture: 'amd64' },
      { name: 'tzdata', version: '2024a-0+deb12u1', architecture: 'all' },
    ]);
  });

  it('tolerates empty input, CRLF-free garbage and paragraphs without a version', () => {
    expect(parseDpkgStatus('')).toEqual([]);
    expect(parseDpkgStatus('::::\n\n\nPackage: x\nStatus: install ok installed\n')).toEqual([]);
    expect(parseDpkgStatus('Package: y\nStatus: install ok installed\nVersion: 1\n\n  \nPackage: z\nStatus: install ok installed\nVersion: 2')).toEqual([
      { name: 'y', version: '1', architecture: '' },
      { name: 'z', version: '2', architecture: '' },
    ]);
  });
});
