/* A stand-in for Windows' bcryptprimitives.dll, for running the test suite under Wine only.
 *
 * Rust's standard library (1.78 and later) takes its random bytes from ProcessPrng in
 * bcryptprimitives.dll. Real Windows 10 and 11 have it; Wine 8.0 (Debian 12's wine64) does
 * not, so every Rust program fails to start under it. This DLL exports ProcessPrng over
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has. scripts/windows/test.sh builds
 * it with mingw-w64 and places it in the Wine prefix's system32. It is never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
