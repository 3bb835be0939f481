#!/usr/bin/env python3
# Checks, without a GPU, native/cuda/qgemm_int8.cu: chunk loads (S8 and U4 unpacking with
# guards), the shared-memory layout, per-lane fragment loads and the epilogue indices, with
# mma.m16n8k32 implemented from the PTX ISA fragment tables, against exact numpy integers.
# Mirrors the kernel by hand: keep it in step with it. Run: python3 test/gpu/sim/qgemm_fragments.py
import sys
import numpy as np
failed = 0
rng = np.random.default_rng(1)
kBM=kBN=kBK=64; kLd=kBK+16; T=128

def pack_u4(W):  # W: N x K values 0..15 -> rows of ceil(K/2) bytes
    N,K=W.shape; rb=(K+1)//2; out=np.zeros((N,rb),np.uint8)
    for k in range(K):
        out[:,k//2] |= (W[:,k] << (4*(k%2))).astype(np.uint8)
    return out

def load_bytes(base, ld, row, rows, k, K):
    if row>=rows: return np.zeros(16,np.uint8)
    out=np.zeros(16,np.uint8)
    for j in range(16):
        if k+j<K: out[j]=base[row*ld+k+j]
    return out

def load_u4(base, ld, row, rows, k, K):
    if row>=rows: return np.zeros(16,np.uint8)
    packed=np.zeros(8,np.uint32)
    for j in range(8):
        kk=k+2*j
        b = int(base[row*ld + k//2 + j]) if kk<K else 0
        if kk+1>=K: b &= 0x0F
        packed[j]=b
    w=[int(packed[0])|int(packed[1])<<8|int(packed[2])<<16|int(packed[3])<<24,
       int(packed[4])|int(packed[5])<<8|int(packed[6])<<16|int(packed[7])<<24]
    out=[]
    for q in range(4):
        src=(w[q//2] >> (16*(q%2))) & 0xFFFFFFFF
        v=(src & 0xF) | ((src>>4)&0xF)<<8 | ((src>>8)&0xF)<<16 | ((src>>12)&0xF)<<24
        out += [(v>>(8*i))&0xFF for i in range(4)]
    return np.array(out,np.uint8)

def u32(buf, off): return int(buf[off])|int(buf[off+1])<<8|int(buf[off+2])<<16|int(buf[off+3])<<24
def bytes_of(x, signed):
    b=[(x>>(8*i))&0xFF for i in range(4)]
    return [v-256 if signed and v>=128 else v for v in b]

def mma(c, a_regs, b_regs):
    # a_regs[lane][4], b_regs[lane][2], c[lane][4]; PTX layout for m16n8k32 8-bit
    A=np.zeros((16,32),np.int64); B=np.zeros((32,8),np.int64)
    for lane in range(32):
        g,t=lane//4,lane%4
        for i in range(16):
            row = g if (i<4 or 8<=i<12) else g+8
            col = t*4+(i&3) + (16 if i>=8 else 0)
            A[row,col]=bytes_of(a_regs[lane][i//4], False)[i%4]
        for i in range(8):
            row = t*4+(i&3) + (16 if i>=4 else 0); col=g
            B[row,col]=bytes_of(b_regs[lane][i//4], True)[i%4]
    D=A@B
    for lane in range(32):
        g,t=lane//4,lane%4
        for i in range(4):
            row = g if i<2 else g+8; col=t*2+(i&1)
            c[lane][i]+=D[row,col]

def qgemm(M,N,K,A,lda,B,ldb,u4,row_sum=None,col_zero=None,col_off=None):
    C=np.full((M,N),-999999,np.int64)
    for bx in range((M+63)//64):
        for by in range((N+63)//64):
            m0,n0=bx*64,by*64
            acc=[[[[0]*4 for _ in range(32)] for _ in range(4)] for _ in range(2)]
            acc={(w,i,j):[[0]*4 for _ in range(32)] for w in range(4) for i in range(2) for j in range(4)}
            for k0 in range(0,K,kBK):
                As=np.zeros(kBM*kLd,np.uint8); Bs=np.zeros(kBN*kLd,np.uint8)
                for tid in range(T):
                    for c in range(2):
                        chunk=tid+c*T; row=chunk//4; kc=(chunk%4)*16
                        As[row*kLd+kc:row*kLd+kc+16]=load_bytes(A,lda,m0+row,M,k0+kc,K)
                        Bs[row*kLd+kc:row*kLd+kc+16]=(load_u4 if u4 else load_bytes)(B,ldb,n0+row,N,k0+kc,K)
                for ks in (0,32):
                    for w in range(4):
                        wm,wn=w//2,w%2
                        a={}; b={}
                        for lane in range(32):
                            gq,tq=lane//4,lane%4
                            for i in range(2):
                                r0=(wm*32+i*16+gq)*kLd+ks+4*tq
                                a[(i,lane)]=[u32(As,r0),u32(As,r0+8*kLd),u32(As,r0+16),u32(As,r0+8*kLd+16)]
                            for j in range(4):
                                r0=(wn*32+j*8+gq)*kLd+ks+4*tq
                                b[(j,lane)]=[u32(Bs,r0),u32(Bs,r0+16)]
                        for i in range(2):
                            for j in range(4):
                                mma(acc[(w,i,j)],[a[(i,l)] for l in range(32)],[b[(j,l)] for l in range(32)])
            for w in range(4):
                wm,wn=w//2,w%2
                for lane in range(32):
                    gq,tq=lane//4,lane%4
                    for i in range(2):
                        for j in range(4):
                            for r in range(4):
                                gm=m0+wm*32+i*16+gq+(8 if r>=2 else 0)
                                gn=n0+wn*32+j*8+2*tq+(r&1)
                                if gm>=M or gn>=N: continue
                                v=acc[(w,i,j)][lane][r]
                                if row_sum is not None: v-=row_sum[gm]*col_zero[gn]
                                if col_off is not None: v+=col_off[gn]
                                C[gm,gn]=v
    return C

for (M,N,K,pad,u4) in [(37,70,77,3,False),(37,70,77,3,True),(5,3,1,1,True),(70,65,64,0,False),(3,9,33,0,True)]:
    A=rng.integers(0,256,(M,K+pad)).astype(np.uint8)
    if u4:
        W=rng.integers(0,16,(N,K)); P=pack_u4(W); ldb=P.shape[1]+pad
        Bb=np.full((N,ldb),0xAB,np.uint8); Bb[:,:P.shape[1]]=P
    else:
        W=rng.integers(-128,128,(N,K)); ldb=K+pad
        Bb=np.full((N,ldb),0xAB,np.uint8); Bb[:,:K]=(W%256).astype(np.uint8)
    rs=A[:,:K].astype(np.int64).sum(1); cz=rng.integers(-128,128,N); co=rng.integers(-1000,1000,N)
    got=qgemm(M,N,K,A.reshape(-1),K+pad,Bb.reshape(-1),ldb,u4,rs,cz,co)
    want=A[:,:K].astype(np.int64)@W.T.astype(np.int64) - np.outer(rs,cz) + co
    ok = np.array_equal(got,want)
    failed += not ok
    print(M,N,K,pad,'u4' if u4 else 's8', 'OK' if ok else 'MISMATCH')
sys.exit(1 if failed else 0)
